"""File discovery (rflint/files.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rflint.run.config import Settings
from rflint.run.files import UsageError, discover, real_paths


def touch(root: Path, *relative: str) -> None:
    for name in relative:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


def found(tmp_path: Path, paths: list[str] | None = None, force_exclude: bool = False, **settings) -> list[str]:
    files, errors = discover(paths or [str(tmp_path)], Settings(root=tmp_path, **settings), force_exclude)
    assert errors == []
    return [Path(os.path.abspath(f)).relative_to(tmp_path).as_posix() for f in files]


def test_nested_packages_sorted(tmp_path):
    touch(tmp_path, "pkg/__init__.py", "pkg/sub/net.py", "pkg/a.py", "top.py", "README.md", "pkg/data.json")
    assert found(tmp_path) == ["pkg/__init__.py", "pkg/a.py", "pkg/sub/net.py", "top.py"]


def test_skips_hidden_venv_and_pycache(tmp_path):
    touch(tmp_path, "net.py", ".hidden/a.py", "pkg/.cache/b.py", "env/pyvenv.cfg", "env/lib/c.py", "__pycache__/d.py")
    assert found(tmp_path) == ["net.py"]


def test_site_packages_is_not_excluded(tmp_path):
    touch(tmp_path, "lib/site-packages/torchvision/models/resnet.py")
    assert found(tmp_path) == ["lib/site-packages/torchvision/models/resnet.py"]


def test_default_exclude_prunes_build_folders(tmp_path):
    touch(tmp_path, "build/lib/pkg/net.py", "dist/x.py", "node_modules/y.py", "pkg/net.py")
    assert found(tmp_path) == ["pkg/net.py"]


def test_exclude_globs_match_names_and_relative_paths(tmp_path):
    touch(tmp_path, "models/legacy/old.py", "models/resnet_old.py", "models/net.py", "other/legacy/x.py")
    assert found(tmp_path, extend_exclude=("models/legacy", "*_old.py")) == ["models/net.py", "other/legacy/x.py"]
    assert found(tmp_path, extend_exclude=("legacy",)) == ["models/net.py", "models/resnet_old.py"]


def test_exclude_replaces_defaults(tmp_path):
    touch(tmp_path, "build/net.py", "models/net.py")
    assert found(tmp_path, exclude=("models",)) == ["build/net.py"]


def test_named_files_are_linted_even_if_excluded(tmp_path):
    touch(tmp_path, "models/legacy/old.py", "build/gen.py", "models/net.py")
    named = [str(tmp_path / "models/legacy/old.py"), str(tmp_path / "build/gen.py"), str(tmp_path / "models")]
    assert found(tmp_path, named, extend_exclude=("legacy",)) == ["build/gen.py", "models/legacy/old.py", "models/net.py"]


def test_force_exclude_applies_to_named_paths_and_their_folders(tmp_path):
    touch(tmp_path, "models/legacy/old.py", "build/gen.py", "models/net.py", ".venv/lib/x.py")
    named = [str(tmp_path / p) for p in ("models/legacy/old.py", "build/gen.py", "models/net.py", ".venv/lib/x.py")]
    assert found(tmp_path, named, force_exclude=True, extend_exclude=("legacy",)) == ["models/net.py"]


def test_folder_above_root_does_not_exclude(tmp_path):
    """A checkout inside a folder called `build` is not excluded as a whole."""
    project = tmp_path / "build" / "proj"
    touch(project, "net.py")
    files, _ = discover([str(project / "net.py")], Settings(root=project), force_exclude=True)
    assert files == [project / "net.py"]


def test_named_hidden_folder_is_walked(tmp_path):
    touch(tmp_path, ".venv/lib/site-packages/tv/models/resnet.py")
    named = [str(tmp_path / ".venv/lib/site-packages/tv/models")]
    assert found(tmp_path, named) == [".venv/lib/site-packages/tv/models/resnet.py"]


def test_deduplicated_by_resolved_path(tmp_path, monkeypatch):
    touch(tmp_path, "pkg/net.py")
    monkeypatch.chdir(tmp_path)
    files, _ = discover(["pkg/net.py", "./pkg/net.py", "pkg", str(tmp_path)], Settings(root=tmp_path), False)
    assert files == [Path("pkg/net.py")]


def test_symlink_loop_terminates(tmp_path):
    touch(tmp_path, "net.py", "sub/a.py")
    os.symlink(tmp_path, tmp_path / "loop")
    os.symlink(tmp_path, tmp_path / "sub" / "up")
    assert found(tmp_path) == ["net.py", "sub/a.py"]


def test_symlinked_folder_is_followed_and_real_path_preferred(tmp_path):
    touch(tmp_path, "zoo/net.py", "outside/vendor/x.py")
    os.symlink(tmp_path / "zoo", tmp_path / "a_link")
    os.symlink(tmp_path / "outside" / "vendor", tmp_path / "zoo" / "vendor")
    assert found(tmp_path, [str(tmp_path / "zoo"), str(tmp_path / "a_link")]) == ["zoo/net.py", "zoo/vendor/x.py"]


def test_real_paths_agree_with_realpath_through_symlinked_files_and_folders(tmp_path, monkeypatch):
    touch(tmp_path, "real/net.py", "real/other.py")
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "alias.py").symlink_to(tmp_path / "real" / "other.py")
    (tmp_path / "real" / "dangling.py").symlink_to(tmp_path / "nowhere.py")
    monkeypatch.chdir(tmp_path)
    files = [str(tmp_path / "linked" / name) for name in ("net.py", "alias.py", "dangling.py")]
    files += ["linked/net.py", "real/../linked/alias.py", "missing.py"]
    assert real_paths(files) == {file: os.path.realpath(file) for file in files}


def test_missing_path_is_a_usage_error(tmp_path):
    touch(tmp_path, "net.py")
    with pytest.raises(UsageError, match=r"^path 'nope/x\.py' does not exist$") as error:
        discover([str(tmp_path / "net.py"), "nope/x.py"], Settings(root=tmp_path), False)
    assert isinstance(error.value, FileNotFoundError)


def test_unreadable_folder_is_reported_not_fatal(tmp_path, monkeypatch):
    touch(tmp_path, "net.py", "locked/a.py")
    scandir = os.scandir

    def denying_scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denying_scandir)
    files, errors = discover([str(tmp_path)], Settings(root=tmp_path), False)
    assert files == [tmp_path / "net.py"]
    assert errors == [f"{tmp_path / 'locked'}: cannot read folder: Permission denied"]
