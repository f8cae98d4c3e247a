"""The torch-free core: the layer graph every front end produces, the layout algebra that
says which input axes a tensor dimension carries, receptive-field arithmetic, and results.

Nothing here imports a framework, so declared graphs, saved Keras models and the tests of
the arithmetic run without torch.
"""
