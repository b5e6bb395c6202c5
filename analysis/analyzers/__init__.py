"""Analyzers added as modules: each module here registers itself with
:func:`gazelab.analysis.saliency.register_analyzer` and is imported by
:mod:`gazelab.analysis.saliency` when it loads, so its name is at once an
``analysis.analyzer`` settings choice, a ``--analyzer`` choice of every command
and in their help. Adding an analyzer is one module here plus its test."""
