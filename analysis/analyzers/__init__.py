"""Analyzers added as modules: each module here registers itself with
:func:`gazelab.analysis.saliency.register_analyzer`; the registry
(:data:`~gazelab.analysis.saliency.ANALYZER_REGISTRY`) imports every module here the first
time it is read, so its name is at once an ``analysis.analyzer`` settings choice, a
``--analyzer`` choice of every command and in their help. Adding an analyzer is one module
here plus its test (``docs/extending.md``)."""
