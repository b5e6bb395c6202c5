"""Model-mask algorithms added as modules: each module here registers itself with
:func:`gazelab.models.masks.register_model_mask` and is imported by
:mod:`gazelab.models.masks` when it loads, so its name is at once a ``gazelab masks
--algorithm`` choice, in the help, and exportable. Adding a mask algorithm is one module
here plus its test."""
