"""Model-mask algorithms added as modules: each module here registers itself with
:func:`gazelab.models.masks.register_model_mask`; the registry
(:data:`~gazelab.models.masks.MODEL_MASKS`) imports every module here the first time it is
read, so its name is at once a ``gazelab masks --algorithm`` choice, in the help, and
exportable. Adding a mask algorithm is one module here plus its test
(``docs/extending.md``)."""
