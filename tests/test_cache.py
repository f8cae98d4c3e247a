"""The result cache: reuse exactly when nothing a result depends on changed, never trust damage."""

from __future__ import annotations

import json
import os
import subprocess
import shutil
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import rflint.run.cache as cache_module
from rflint.run.cache import CACHEDIR_SIGNATURE, Cache, clean, fingerprint
from rflint.core.diagnostics import Diagnostic, FileReport, ModelReport
from rflint.core.layers import Layer, Site
from rflint.core.result import Result

OPTIONS = {"input_res": [224, 224], "input_res_auto": False, "search_fixes": True}


def synthetic_report(file: str, imported: tuple[str, ...] = (), layers: int = 3) -> FileReport:
    """A report shaped like the workers' (Fractions, nested frozen dataclasses), built without torch."""
    site = Site(file, 7, 9, 7, 30)
    convs = [
        Layer(f"features.{i}", "Conv2d", "conv", (3, 3), (Fraction(2), Fraction(1, 2)), (1, 1),
              (3 + 2 * i,) * 2, (3 + 2 * i,) * 2, (1 + 2 * i,) * 2, (Fraction(2 ** i),) * 2,
              called_at=site, constructed_at=(site,), stride_literals=(site, None))
        for i in range(layers)
    ]
    result = Result("Net", (224, 224), convs, i_min=(5, 5), i_max=(9, 9), unknown_ops={"relu": 2},
                    component_types=frozenset({"net:Block"}))
    model = ModelReport("Net", file, 7, 1, (224, 224), kind="class", result=result,
                        type_name="net:Net", component_types=frozenset({"net:Block"}))
    return FileReport(file, models=[model], imported_files=imported, skipped=["make_net: needs arguments"])


@pytest.fixture
def project(tmp_path: Path) -> dict[str, str]:
    """net.py imports blocks.py; other.py stands alone."""
    sources = {"net": "from blocks import Block\n", "blocks": "STRIDE = 2\n", "other": "STRIDE = 1\n"}
    files = {}
    for name, text in sources.items():
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        files[name] = str(path)
    return files


def reports_of(project: dict[str, str]) -> dict[str, FileReport]:
    return {
        "net": synthetic_report(project["net"], imported=(project["blocks"], project["net"])),
        "blocks": synthetic_report(project["blocks"], imported=(project["blocks"],)),
        "other": synthetic_report(project["other"]),
    }


def new_run(folder: Path, project: dict[str, str], options=OPTIONS, analyzed=None) -> Cache:
    return Cache(folder, fingerprint(options), frozenset(project.values()) if analyzed is None else analyzed)


def fill(folder: Path, project: dict[str, str], **run) -> None:
    """A completed cold run: every file looked up first, then its report stored."""
    cache = new_run(folder, project, **run)
    reports = reports_of(project).values()
    assert all(cache.get(report.file) is None for report in reports)
    for report in reports:
        cache.put(report)
    assert cache.warnings == []


def hits(folder: Path, project: dict[str, str], **run) -> set[str]:
    cache = new_run(folder, project, **run)
    reports = reports_of(project)
    found = {name for name, report in reports.items() if cache.get(report.file) == report}
    assert cache.warnings == []
    return found


def test_nothing_changed_reuses_every_report_equal_to_the_stored_one(tmp_path, project):
    folder = tmp_path / ".rflint_cache"
    fill(folder, project)
    assert hits(folder, project) == {"net", "blocks", "other"}


@pytest.mark.parametrize(
    ("edited", "missed"),
    [("net", {"net"}), ("blocks", {"net", "blocks"}), ("other", {"other"})],
    ids=["model-file", "imported-file", "standalone-file"],
)
def test_an_edit_invalidates_the_file_and_its_importers_only(tmp_path, project, edited, missed):
    folder = tmp_path / ".rflint_cache"
    fill(folder, project)
    Path(project[edited]).write_text("STRIDE = 4\n")
    assert hits(folder, project) == {"net", "blocks", "other"} - missed


def test_deleting_an_imported_file_invalidates_its_importers(tmp_path, project):
    folder = tmp_path / ".rflint_cache"
    fill(folder, project)
    os.remove(project["blocks"])
    assert hits(folder, project) == {"other"}


def test_an_imported_file_leaving_the_analyzed_set_invalidates_its_importers(tmp_path, project):
    """``rflint .`` then ``rflint net.py other.py``: blocks.py is no longer analyzed, so the
    sites and literals recorded in it would now be missing from net.py's result."""
    folder = tmp_path / ".rflint_cache"
    fill(folder, project)
    narrower = frozenset({project["net"], project["other"]})
    cache = new_run(folder, project, analyzed=narrower)
    assert cache.get(project["net"]) is None
    assert cache.get(project["other"]) == reports_of(project)["other"]


@pytest.mark.parametrize(
    "change",
    [
        lambda monkeypatch: {**OPTIONS, "input_res": [64, 64]},
        lambda monkeypatch: {**OPTIONS, "models": [{"target": "net.py::Net", "kwargs": {"width": 2}}]},
        lambda monkeypatch: monkeypatch.setattr(cache_module, "__version__", "9.9.9") or OPTIONS,
    ],
    ids=["input-res", "config", "rflint-version"],
)
def test_a_new_fingerprint_misses_without_evicting_the_old_entries(tmp_path, project, monkeypatch, change):
    folder = tmp_path / ".rflint_cache"
    fill(folder, project)
    with monkeypatch.context() as patch:
        options = change(patch)
        assert hits(folder, project, options=options) == set()
        fill(folder, project, options=options)
        assert hits(folder, project, options=options) == {"net", "blocks", "other"}
    assert hits(folder, project) == {"net", "blocks", "other"}


def test_fingerprint_is_canonical():
    reordered = dict(reversed(list(OPTIONS.items())))
    assert fingerprint(OPTIONS) == fingerprint(reordered)
    assert fingerprint({"res": (1, 2), "files": {Path("b"), Path("a")}}) == fingerprint({"res": [1, 2], "files": ["a", "b"]})
    with pytest.raises(TypeError, match="cannot fingerprint"):
        fingerprint({"callback": object()})


def test_a_report_whose_import_failed_is_not_stored(tmp_path, project):
    """Its imported files are unknown, and a timeout may not happen again."""
    folder = tmp_path / ".rflint_cache"
    failed = FileReport(project["other"], diagnostics=[
        Diagnostic("RF901", "cannot import: timed out after 60 s", project["other"], 1, 1, 1, 1, ()),
    ])
    new_run(folder, project).put(failed)
    assert new_run(folder, project).get(project["other"]) is None


def test_a_dependency_modified_during_the_run_is_not_stored(tmp_path, project):
    """The analysis may have read either version of blocks.py; which one is unknown."""
    folder = tmp_path / ".rflint_cache"
    cache = new_run(folder, project)
    report = reports_of(project)["net"]
    Path(project["blocks"]).write_text("STRIDE = 3\n")
    later = cache._started_ns + 10**9
    os.utime(project["blocks"], ns=(later, later))
    cache.put(report)
    assert new_run(folder, project).get(project["net"]) is None


def counting_reads(monkeypatch) -> list[str]:
    """The names of the source files read through ``Path.read_bytes`` (how the cache hashes) from now on."""
    reads = []
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda path: path.suffix == ".py" and reads.append(path.name) or read_bytes(path))
    return reads


def test_each_file_is_hashed_once_per_run(tmp_path, project, monkeypatch):
    folder = tmp_path / ".rflint_cache"
    fill(folder, project)
    cache = new_run(folder, project)
    reads = counting_reads(monkeypatch)
    for report in reports_of(project).values():
        assert cache.get(report.file) is not None
        cache.put(report)
    assert sorted(reads) == ["blocks.py", "net.py", "other.py"]


def test_a_file_whose_status_settled_is_not_read_again_until_it_changes(tmp_path, project, monkeypatch):
    """The stat fast path: same device, inode, size, mtime and ctime as when hashed vouch for
    the stored hash. An edit that keeps the size and puts the mtime back still moves the ctime."""
    folder = tmp_path / ".rflint_cache"
    fill(folder, project)
    reads = counting_reads(monkeypatch)
    assert hits(folder, project) == {"net", "blocks", "other"}
    assert sorted(reads) == ["blocks.py", "net.py", "other.py"]  # written just now: not settled, read again

    monkeypatch.setattr(cache_module, "RACY_NS", 0)  # as if they had been written long ago
    cache = new_run(folder, project)
    for report in reports_of(project).values():
        assert cache.get(report.file) is not None
        cache.put(report)  # with the statuses, settled now
    reads.clear()
    assert hits(folder, project) == {"net", "blocks", "other"} and reads == []

    blocks = Path(project["blocks"])
    before = blocks.stat()
    time.sleep(0.01)  # a coarse clock tick, so the ctime moves
    blocks.write_text("STRIDE = 3\n")  # same size
    os.utime(blocks, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert blocks.stat().st_size == before.st_size and blocks.stat().st_mtime_ns == before.st_mtime_ns
    assert hits(folder, project) == {"other"} and reads == ["blocks.py"]


def test_installed_versions_are_remembered_until_a_distribution_changes(tmp_path, project, monkeypatch):
    """A warm run reads the versions from the cache folder's record, not importlib.metadata;
    upgrading a distribution (its .dist-info renamed) invalidates the record and the entry."""
    import importlib.metadata

    site = tmp_path / "site"
    site.mkdir()
    install_fakelib(site, "fakelib", "1.0")
    monkeypatch.syspath_prepend(site)
    monkeypatch.setattr(cache_module, "RACY_NS", 0)  # the metadata was written just now
    report = reports_of(project)["net"]
    report.installed = ("fakelib",)
    folder = tmp_path / ".rflint_cache"

    def reused() -> bool:
        cache = new_run(folder, project)
        found = cache.get(report.file) == report
        if not found:
            cache.put(report)
        cache.finish()
        return found

    assert not reused()
    with monkeypatch.context() as patch:
        def scanned(*args):
            raise AssertionError("importlib.metadata was asked")

        patch.setattr(importlib.metadata, "version", scanned)
        patch.setattr(importlib.metadata, "packages_distributions", scanned)
        assert reused()
    install_fakelib(site, "fakelib", "2.0")
    assert not reused() and reused()


def entry_file(folder: Path) -> Path:
    (entry,) = [path for path in folder.glob("*/*") if not path.name.startswith(".")]
    return entry


def damaged_entries(valid: bytes) -> dict[str, bytes]:
    middle = len(valid) // 2
    return {
        "empty": b"",
        "truncated": valid[:middle],
        "flipped-byte": valid[:middle] + bytes([valid[middle] ^ 0xFF]) + valid[middle + 1:],
        "garbage": os.urandom(len(valid)),
        "header-only": valid[:40],
    }


@pytest.mark.parametrize("damage", list(damaged_entries(b"x" * 100)))
def test_a_damaged_entry_is_ignored_with_a_warning_and_replaced(tmp_path, project, damage):
    folder = tmp_path / ".rflint_cache"
    report = reports_of(project)["other"]
    new_run(folder, project).put(report)
    entry = entry_file(folder)
    entry.write_bytes(damaged_entries(entry.read_bytes())[damage])
    cache = new_run(folder, project)
    assert cache.get(report.file) is None
    assert len(cache.warnings) == 1
    assert cache.warnings[0].startswith(f"ignoring corrupted cache entry {entry}: ")
    cache.put(report)
    assert new_run(folder, project).get(report.file) == report


def test_a_well_formed_entry_of_something_else_is_not_trusted(tmp_path, project):
    """The checksum proves the bytes are whole, not that they are a report of this file."""
    folder = tmp_path / ".rflint_cache"
    reports = reports_of(project)
    new_run(folder, project).put(reports["other"])
    other_entry = entry_file(folder)
    other_entry.rename(tmp_path / "other_entry")
    new_run(folder, project).put(reports["net"])
    entry_file(folder).write_bytes((tmp_path / "other_entry").read_bytes())
    cache = new_run(folder, project)
    assert cache.get(project["net"]) is None
    assert cache.warnings[0].endswith("not the entry of this file")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_no_damage_ever_yields_a_report_or_an_exception(tmp_path, project, data):
    folder = tmp_path / ".rflint_cache"
    report = reports_of(project)["other"]
    new_run(folder, project).put(report)
    entry = entry_file(folder)
    valid = entry.read_bytes()
    cut = data.draw(st.integers(0, len(valid) - 1))
    damaged = valid[:cut] + data.draw(st.binary(max_size=8)) + valid[cut + data.draw(st.integers(1, 8)):]
    entry.write_bytes(damaged)
    cache = new_run(folder, project)
    assert (cache.get(report.file) == report) == (damaged == valid)
    entry.write_bytes(valid)


def test_the_folder_is_marked_for_git_and_backup_tools(tmp_path, project):
    folder = tmp_path / "deep" / ".rflint_cache"
    fill(folder, project)
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (folder / "CACHEDIR.TAG").read_text().splitlines()[0] == CACHEDIR_SIGNATURE
    assert [path.name for path in (folder / cache_module.__version__).iterdir() if path.name.startswith(".")] == []


def test_an_existing_project_folder_gets_no_markers_and_is_never_cleaned(tmp_path, project):
    """``--cache-dir .`` must neither git-ignore the project nor let ``--clean`` delete it."""
    fill(tmp_path, project)
    assert not (tmp_path / ".gitignore").exists() and not (tmp_path / "CACHEDIR.TAG").exists()
    assert hits(tmp_path, project) == {"net", "blocks", "other"}
    with pytest.raises(ValueError, match="not an rflint cache"):
        clean(tmp_path)
    assert Path(project["net"]).exists()


def test_clean_removes_the_cache_folder(tmp_path, project):
    folder = tmp_path / ".rflint_cache"
    fill(folder, project)
    clean(folder)
    assert not folder.exists()
    clean(folder)
    assert hits(folder, project) == set()


@pytest.mark.parametrize("where", ["cache folder", "folder above"])
def test_an_unusable_folder_warns_once_and_lints_on(tmp_path, project, where):
    """Was one warning per file when the cache folder itself was a file."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    cache = new_run(blocker if where == "cache folder" else blocker / "cache", project)
    for report in reports_of(project).values():
        assert cache.get(report.file) is None
        cache.put(report)
    assert cache.finish() == [f"cache folder {cache.folder} is unusable ({blocker} is not a folder); not caching this run"]
    assert blocker.read_text() == ""


# Looks up with the parent's fingerprint: rflint's source may be edited while the tests run.
WARM_RUN = """
import json, sys
from rflint.run.cache import Cache, fingerprint
files = json.loads(sys.argv[2])
fingerprint(json.loads(sys.argv[3]))
cache = Cache(sys.argv[1], sys.argv[4], frozenset(files))
found = sum(cache.get(file) is not None for file in files)
print(json.dumps({"found": found, "torch": "torch" in sys.modules}))
"""


def test_a_warm_run_finds_every_entry_without_importing_torch(tmp_path):
    """40 files of 100-layer models: imports, fingerprint and every lookup stay torch-free.
    (How long that takes is benchmarks/bench.py's business, not a test's.)"""
    files = []
    for index in range(40):
        path = tmp_path / f"model_{index}.py"
        path.write_text(f"WIDTH = {index}\n")
        files.append(str(path))
    folder = tmp_path / ".rflint_cache"
    cache = Cache(folder, fingerprint(OPTIONS), frozenset(files))
    for file in files:
        cache.put(synthetic_report(file, imported=(file,), layers=100))
    run = subprocess.run(
        [sys.executable, "-c", WARM_RUN, str(folder), json.dumps(files), json.dumps(OPTIONS), cache.fingerprint],
        capture_output=True, text=True, check=True,
    )
    outcome = json.loads(run.stdout)
    assert outcome == {**outcome, "found": len(files), "torch": False}


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_an_entry_that_is_not_a_file_is_replaced_with_one_warning(tmp_path, project, kind):
    """A folder in an entry's place used to turn caching off for every run; a FIFO hung it."""
    folder = tmp_path / ".rflint_cache"
    fill(folder, project)
    entries = sorted(path for path in folder.glob("*/*") if not path.name.startswith("."))
    for entry in entries:
        entry.unlink()
        entry.mkdir() if kind == "folder" else os.mkfifo(entry)
    cache = new_run(folder, project)
    assert all(cache.get(file) is None for file in project.values())
    (warning,) = cache.warnings
    assert warning.startswith("ignoring corrupted cache entry ") and warning.endswith(f"(and {len(entries) - 1} more)")
    for report in reports_of(project).values():
        cache.put(report)
    assert cache.finish() == [warning]
    assert hits(folder, project) == {"net", "blocks", "other"}


def test_entries_are_keyed_on_files_read_environment_and_installed_versions(tmp_path, project, monkeypatch):
    """The worker's records of what an import read: a config file (and one it looked for and
    did not find), environment variables (set and unset), installed distributions."""
    config, missing = tmp_path / "net.json", tmp_path / "override.json"
    config.write_text('{"stride": 2}')
    monkeypatch.setenv("NET_WIDTH", "8")
    monkeypatch.delenv("NET_DEBUG", raising=False)
    report = reports_of(project)["net"]
    report.read_files = (str(config), str(missing))
    report.environment = {"NET_WIDTH": cache_module.value_digest("8"), "NET_DEBUG": None}
    report.installed = ("hypothesis",)
    folder = tmp_path / ".rflint_cache"
    installed_first = tmp_path / "site"  # where a newer version shadows the environment's
    installed_first.mkdir()
    monkeypatch.syspath_prepend(installed_first)

    def reused() -> bool:
        cache = new_run(folder, project)
        found = cache.get(report.file) == report
        if not found:
            cache.put(report)
        return found

    assert not reused() and reused()
    changes = [
        lambda: config.write_text('{"stride": 1}'),
        lambda: missing.write_text("{}"),
        lambda: monkeypatch.setenv("NET_WIDTH", "16") or report.environment.update(NET_WIDTH=cache_module.value_digest("16")),
        lambda: monkeypatch.setenv("NET_DEBUG", "1") or report.environment.update(NET_DEBUG=cache_module.value_digest("1")),
        lambda: install_fakelib(installed_first, "hypothesis", "0.0.1"),
        lambda: install_fakelib(installed_first, "torch", "0.0.1"),  # checked whatever the file imported
    ]
    for change in changes:
        change()
        assert not reused() and reused()


def test_old_and_oversized_entries_are_evicted_least_recently_used_first(tmp_path, project):
    folder = tmp_path / ".rflint_cache"
    fill(folder, project)
    stale_version = folder / "0.0.1" / ("e" * 64)
    stale_version.parent.mkdir()
    stale_version.write_bytes(b"x")
    leftover = folder / cache_module.__version__ / ".tmp-killed"
    leftover.write_bytes(b"x")
    month_ago = time.time() - 31 * 86400
    for path in (stale_version, leftover):
        os.utime(path, (month_ago, month_ago))
    hits(folder, project)  # a hit marks an entry used
    cache = new_run(folder, project)
    cache.put(reports_of(project)["other"])
    assert cache.finish() == []
    assert not stale_version.parent.exists() and not leftover.exists()
    assert hits(folder, project) == {"net", "blocks", "other"}

    entry_sizes = sorted(path.stat().st_size for path in folder.glob("*/*") if not path.name.startswith("."))
    old = new_run(folder, project)._entry_path(project["net"])
    os.utime(old, (month_ago + 86400 * 20, month_ago + 86400 * 20))  # used 11 days ago: least recent
    cache = Cache(folder, fingerprint(OPTIONS), frozenset(project.values()), max_bytes=sum(entry_sizes) - 1)
    cache.put(reports_of(project)["other"])
    cache.finish()
    assert hits(folder, project) == {"blocks", "other"}


STALE_NET = '''\
import json
import os
from pathlib import Path

import fakelib
from torch import nn

CONFIG = json.loads((Path(__file__).parent / "net.json").read_text())
STRIDE = 1 + (CONFIG["big"] + int(os.environ.get("NET_BIG", "0")) + fakelib.BIG) % 2


def net() -> nn.Sequential:
    return nn.Sequential(*[nn.Conv2d(3, 3, 3, stride=STRIDE, padding=1) for _ in range(6)])
'''


def install_fakelib(site: Path, name: str, version: str, big: int = 0) -> None:
    """Install (or replace) distribution ``name`` with a package of the same name, as pip does."""
    for old in site.glob(f"{name}*"):
        shutil.rmtree(old)
    (site / name).mkdir()
    (site / name / "__init__.py").write_text(f"BIG = {big}\n")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{name}\n")


def test_a_result_is_not_reused_after_a_config_file_an_environment_variable_or_a_library_changed(tmp_path):
    """Each change flips the stride and so the exit status; the landed cache kept the old one
    (its key only had the analyzed and imported files). The library lives in an environment's
    site-packages, as timm does."""
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "torch_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch from this environment
    # rflint from this checkout: an editable install's own .pth is not read through the line above
    (site / "rflint_checkout.pth").write_text(str(Path(__file__).resolve().parents[1]) + "\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "net.py").write_text(STALE_NET)
    (project / "net.json").write_text('{"big": 0}')
    install_fakelib(site, "fakelib", "1.0", 0)
    runs = []

    def lint(**env) -> int:
        run = subprocess.run([python, "-m", "rflint", ".", "--input-res", "32", "--verbose"], cwd=project, capture_output=True,
                             text=True, env={**os.environ, **env}, timeout=600)
        assert run.returncode in (0, 1), run.stderr
        runs.append(run.stderr)
        return run.returncode

    assert lint() == 0 and lint() == 0
    (project / "net.json").write_text('{"big": 1}')
    assert lint() == 1
    assert lint(NET_BIG="1") == 0
    install_fakelib(site, "fakelib", "2.0", 1)
    assert lint(NET_BIG="1") == 1
    assert lint(NET_BIG="1") == 1
    from_cache = [index for index, stderr in enumerate(runs) if "net.py: from the cache" in stderr]
    assert from_cache == [1, 5]
