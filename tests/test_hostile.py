"""Broken input gets one clear line naming the file and the reason; the run goes on."""

import multiprocessing
import os

import pytest

from helpers import rflint
from rflint import runner

GOOD = '''\
from torch import nn


def good_net() -> nn.Sequential:
    return nn.Sequential(*[nn.Conv2d(3 if i == 0 else 8, 8, 3, stride=2, padding=1) for i in range(6)])
'''
HOSTILE = {
    "syntax_error.py": ("def broken(:\n", "RF901", "cannot import: SyntaxError: invalid syntax (line 1)"),
    "missing_module.py": ("import no_such_module_xyz\n", "RF901",
                          "cannot import: ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    "raises.py": ("raise RuntimeError('boom at import')\n", "RF901", "cannot import: RuntimeError: boom at import"),
    "sys_exit.py": ("import sys\nsys.exit(3)\n", "RF901",
                    "cannot import: SystemExit: the file called sys.exit(3) at import"),
    "os_exit.py": ("import os\nos._exit(0)\n", "RF901", "cannot import: the process exited"),
    "latin1.py": (b"name = '\xe9t\xe9'\n", "RF901", "cannot import: SyntaxError: not valid utf-8: byte 0xe9 at offset 8"),
    "factory_raises.py": ("from torch import nn\n\n\ndef bad_net() -> nn.Module:\n    raise ValueError('no')\n",
                          "RF902", "[bad_net] cannot build: ValueError: no"),
}


def write(folder, name, content):
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.fixture
def repo(tmp_path):
    write(tmp_path, "good.py", GOOD)
    for name, (content, _, _) in HOSTILE.items():
        write(tmp_path, name, content)
    write(tmp_path, "empty.py", "")
    write(tmp_path, "no_models.py", "def helper(x):\n    return x + 1\n")
    write(tmp_path, "needs_args.py", "from torch import nn\n\n\nclass Block(nn.Module):\n"
          "    def __init__(self, width):\n        super().__init__()\n\n    def forward(self, x):\n        return x\n")
    write(tmp_path, "huge.py", "from torch import nn\n\n\ndef huge() -> nn.Sequential:\n"
          "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 30 * 30, 10 ** 6), nn.Linear(10 ** 6, 10 ** 5))\n")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    return tmp_path


def test_every_hostile_file_gets_one_line_and_the_rest_is_analyzed(repo):
    run = rflint(".", "--input-res", "32", "--no-cache", "--verbose", cwd=repo)
    assert run.returncode == 1
    assert "Traceback" not in run.stdout + run.stderr
    lines = run.stdout.splitlines()
    for name, (_, code, message) in HOSTILE.items():
        line = next(l for l in lines if l.startswith(f"{name}:"))
        assert f": {code} " in line and line.endswith(message), line
    assert any(l.startswith("good.py:4:1: RF003 [good_net]") for l in lines)
    # a 100-billion-parameter model costs nothing on the meta device
    assert not any(l.startswith("huge.py") for l in lines)
    assert "rflint: info: needs_args.py: skipped Block: needs arguments to be built" in run.stderr
    assert "rflint: info: empty.py: analyzed (no models found)" in run.stderr
    assert "rflint: info: no_models.py: analyzed (no models found)" in run.stderr
    assert not any(l.startswith("loop/") for l in lines), "the symlink loop is followed once at most"


@pytest.mark.parametrize(
    "source, code, message",
    [
        ("import time\ntime.sleep(600)\n", "RF901", "cannot import: timed out after 3 s"),
        ("import time\nfrom torch import nn\n\n\ndef slow() -> nn.Module:\n    time.sleep(600)\n", "RF902",
         "[slow] cannot build slow: timed out after 3 s"),
    ],
    ids=["import", "build"],
)
def test_a_hang_is_cut_by_the_timeout(tmp_path, source, code, message):
    write(tmp_path, "good.py", GOOD)
    write(tmp_path, "hangs.py", source)
    run = rflint(".", "--input-res", "32", "--no-cache", "--timeout", "3", cwd=tmp_path, timeout=120)
    assert run.returncode == 1
    hang = next(l for l in run.stdout.splitlines() if l.startswith("hangs.py:"))
    assert f": {code} " in hang and hang.endswith(message), hang
    assert "good.py:4:1: RF003" in run.stdout


def test_a_missing_path_is_a_usage_error(tmp_path):
    run = rflint("does_not_exist.py", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == "rflint: error: path 'does_not_exist.py' does not exist"


def test_user_code_cannot_change_another_files_result(tmp_path):
    """A file that monkeypatches torch at import affects only its own worker."""
    write(tmp_path, "a_patches.py", "import torch.nn as nn\nnn.Conv2d.__init__ = None\n")
    write(tmp_path, "good.py", GOOD)
    run = rflint(".", "--input-res", "32", "--no-cache", "--jobs", "1", cwd=tmp_path)
    assert "good.py:4:1: RF003 [good_net]" in run.stdout


def test_a_worker_dead_since_its_last_report_leaves_its_next_file_queued():
    """A thread of user code may ``os._exit`` the worker after it reported a file: the next
    file must wait for a fresh worker, not crash rflint on a broken pipe."""
    worker = runner._Worker(multiprocessing.get_context("fork"), "pkg", runner.Job(frozenset(), 32))
    worker.process.kill()
    worker.process.join()
    queues, running = {"pkg": ["a.py", "b.py"]}, [worker]
    runner._feed(worker, queues, running)
    assert queues == {"pkg": ["a.py", "b.py"]} and running == []
