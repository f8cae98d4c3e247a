"""The Keras front end from the command line: a Keras source file linted and fixed end to
end, saved models (a Keras 3 ``.keras`` archive and a Keras 2 ``to_json()`` file) linted
without torch or keras, tf.keras without TensorFlow, bad files.

Regenerate the goldens after an intended change with ``RFLINT_UPDATE_GOLDEN=1``.
"""

import os
import shutil
import subprocess
import sys


from helpers import REPO, rflint

STRIDES = REPO / "fixtures" / "keras" / "strides.py"
SAVED = ["fixtures/keras/saved/small_cnn.keras", "fixtures/keras/saved/small_cnn_keras2.json"]
BLOCKED = REPO / "tests" / "blocked"  # a torch and a keras package that refuse to import


def golden(name: str, text: str) -> None:
    path = REPO / "tests" / "golden" / name
    if os.environ.get("RFLINT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_keras_source_file_golden():
    run = rflint(STRIDES.relative_to(REPO), "--input-res", "24", "--no-cache")
    assert run.returncode == 1 and run.stderr == ""
    golden("keras-strides-24.txt", run.stdout)


def test_keras_source_file_fixed_end_to_end(tmp_path):
    """A table row, a helper's argument, a keyword, and ``AveragePooling2D(2)`` (its stride
    is its pool size: the fix inserts ``strides=1``), each verified by a rebuild."""
    # The fixes are in keras-strides-24-fixed.py.txt: (64, 2) -> (64, 1), stage(x, 64, 1),
    # DepthwiseConv2D(3, strides=1, ...), AveragePooling2D(2, strides=1).
    target = tmp_path / "strides.py"
    shutil.copy(STRIDES, target)
    run = rflint("strides.py", "--input-res", "24", "--no-cache", "--fix", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout == "Found 8 errors (8 fixed, 0 remaining).\n4 models analyzed, 0 skipped.\n"
    golden("keras-strides-24-fixed.py.txt", target.read_text())  # re-linted by --fix: 0 remaining


def test_saved_models_golden_without_torch_or_keras():
    """A saved model is plain JSON: the run imports neither framework (both are blocked)."""
    env = {"PYTHONPATH": os.pathsep.join([str(BLOCKED), str(REPO)])}
    for form in ("concise", "json"):
        run = rflint(*SAVED, "--input-res", "24", "--no-cache", "--format", form, env=env)
        assert run.returncode == 1 and run.stderr == "", run.stderr
        golden(f"keras-saved-24-{form}.txt", run.stdout)


def test_tf_keras_without_tensorflow_is_one_line(tmp_path):
    (tmp_path / "tf_model.py").write_text(
        "import tensorflow as tf\n\n\ndef net() -> tf.keras.Model:\n    return tf.keras.applications.ResNet50()\n")
    run = rflint("tf_model.py", "--no-cache", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stdout.splitlines()[0] == (
        "tf_model.py:1:1: RF901 cannot import: ImportError: uses tf.keras, which needs TensorFlow (not installed): "
        "lint a saved model instead (model.save('model.keras') or open('model.json', 'w').write(model.to_json()) "
        "where TensorFlow runs)")


def test_bad_saved_models_are_one_line_each_and_the_run_goes_on(tmp_path):
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    (tmp_path / "cyclic.json").write_text('{"class_name": "Functional", "config": {"name": "m", "layers": ['
                                          '{"class_name": "Conv2D", "name": "a", "config": {"name": "a"}, '
                                          '"inbound_nodes": [[["nowhere", 0, 0, {}]]]}], '
                                          '"input_layers": [], "output_layers": [["a", 0, 0]]}}')
    shutil.copy(REPO / SAVED[1], tmp_path / "good.json")
    run = rflint("broken.keras", "cyclic.json", "good.json", "--input-res", "24", "--no-cache", cwd=tmp_path)
    lines = run.stdout.splitlines()
    assert lines[0].startswith("broken.keras:1:1: RF901 cannot read: cannot read a Keras model: Expecting value")
    assert lines[1] == ("cyclic.json:1:1: RF903 [m] cannot analyze: the model has no image input and no "
                        "convolution or pooling layer")
    assert any(line.startswith("good.json:") and "RF003" in line for line in lines)


def test_torch_files_never_import_keras():
    code = ("import sys; from rflint.run.worker import front_end; "
            "front_end('net.py', 'import torch\\nfrom torch import nn\\n'); assert 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
