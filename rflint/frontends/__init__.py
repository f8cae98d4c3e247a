"""Front ends: each turns something a user wrote into the core's layer graph and a Result.

``torch`` (models built on the meta device and captured with torch.fx), ``keras`` (Keras 3
models and saved configs), ``declared`` (``rflint.Graph`` and JSON graph files, torch-free);
``discover`` finds the models a source file defines, for torch and Keras alike.
"""
