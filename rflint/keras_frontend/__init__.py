"""The Keras front end: Keras 3 source files and saved Keras models, as the core's LayerGraph.

``config_graph`` reads a Keras model config (Keras 2 or 3; from a saved file or a live
model) into the core graph without importing torch or keras; ``saved`` reads ``.keras``
archives and JSON files; ``live`` imports a Keras source file (torch backend, meta device),
finds its models, builds them and locates their layers and stride literals.
"""
