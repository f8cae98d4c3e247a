"""Which models of a Keras file are found and how each is reported (in process: the worker's
``lint_file`` on ``fixtures/keras/discovery.py``)."""

import os


from helpers import REPO
from rflint.run.runner import Job
from rflint.run.worker import lint_file

DISCOVERY = os.path.realpath(REPO / "fixtures" / "keras" / "discovery.py")


def test_factories_and_functional_subclasses_are_found_and_subclassed_calls_are_reported():
    report = lint_file(DISCOVERY, Job(frozenset([DISCOVERY]), 32), lambda message: None)
    found = {model.name: (model.kind, model.result.i_min if model.result else model.error) for model in report.models}
    assert found == {
        "annotated": ("factory", (3, 3)),  # -> keras.Model
        "inferred": ("factory", (4, 4)),  # no annotation, returns Sequential(...): 3x3 then a 2x2 pool
        "FunctionalNet": ("class", (5, 5)),  # builds its graph in __init__
        "SubclassedNet": ("class", "RF903: cannot trace: SubclassedNet is a subclassed keras.Model with its own "
                                   "call(): rflint reads functional and Sequential models (keras.Model(inputs, outputs))"),
    }
    assert report.skipped == ["skipped needs_width: needs arguments to be built"]  # helper() returns no model


def test_python_api_on_a_saved_model_a_built_model_and_a_factory():
    import rflint
    from keras_helpers import keras

    assert rflint.analyze_keras(REPO / "fixtures" / "keras" / "saved" / "small_cnn.keras", 24).i_min == (29, 29)

    def net():
        inputs = keras.Input((None, None, 3))
        return keras.Model(inputs, keras.layers.Conv2D(4, 5, strides=2)(keras.layers.Conv2D(4, 3)(inputs)))

    assert rflint.analyze_keras(net, 32).i_min == (7, 7)  # 3, then 3 + 4
    assert rflint.analyze_keras(net(), 32, name="built").name == "built"
