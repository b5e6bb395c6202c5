"""The `gazelab` command line and the Qt GUI (the only place Qt is imported)."""
