"""The Keras front end: Keras 3 source files and saved Keras models, as the core's LayerGraph.

``config_graph`` reads a Keras model config (Keras 2 or 3; from a saved file or a live
model) into the core graph without importing torch or keras; ``saved`` reads ``.keras``
archives and JSON files; ``live`` imports a Keras source file (torch backend, meta device),
finds its models, builds them and locates their layers and stride literals.
"""


def analyze_keras(target, input_res=224, *, name: str | None = None):
    """``rflint.analyze_keras``: the Result of a Keras model at ``input_res``.

    ``target`` is a saved model's path (``.keras`` or JSON: read without torch or keras), a
    built ``keras.Model`` (analysed as is), or a factory (built on the meta device).
    """
    import os

    if isinstance(target, (str, os.PathLike)):
        from rflint.frontends.keras.saved import analyze_saved

        return analyze_saved(os.fspath(target), input_res)
    from rflint.frontends.keras.live import analyze_keras_model, build_keras, import_keras, named_layers

    keras = import_keras()
    if isinstance(target, keras.Model):
        model, layers, sites = target, dict(named_layers(target, "")), {}
    else:
        model, layers, sites, _ = build_keras(target, frozenset(), keras)
    return analyze_keras_model(model, layers, input_res, name=name or model.name, sites=sites)[0]
