"""Issue 20: ``rflint server`` driven by a real LSP client (pygls's) over the server's
stdio, as an editor drives it: initialize, didOpen, publishDiagnostics, hover, codeAction,
applying the fix and didSave, shutdown and exit."""

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

from helpers import rflint

# At I_res 12 (from [tool.rflint]) the block line 8 builds layer 2 with r_min 15 (RF002)
# and the model on line 11 is not fully utilized (RF003); the file prints at import,
# which must not reach the protocol's stdout.
MODEL = textwrap.dedent("""\
    from torch import nn

    print("hello from the model file")


    def block(width, stride):
        return nn.Conv2d(width, width, 3, stride=stride, padding=1)


    def shallow() -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), block(8, 2), block(8, 1))
""")
# A 4x4/4 patchify stem: r_min 4, 12, 20 at I_res 12; the fix (2x2/2) changes weight shapes.
PATCHIFY = textwrap.dedent("""\
    from torch import nn


    class Patchify(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, kernel_size=4, stride=4)
            self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1))

        def forward(self, x):
            return self.body(self.stem(x))
""")
WAIT = 300  # seconds for one lint on a loaded machine (the first imports torch)


class Editor:
    """The client side: what the server published, per file."""

    def __init__(self):
        self.client = LanguageClient("rflint-test", "0")
        self.published: dict[str, asyncio.Queue] = {}

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_publish(params: types.PublishDiagnosticsParams) -> None:
            self.queue(params.uri).put_nowait(params.diagnostics)

    def queue(self, uri: str) -> asyncio.Queue:
        return self.published.setdefault(uri, asyncio.Queue())

    async def next_diagnostics(self, uri: str) -> list[types.Diagnostic]:
        return await asyncio.wait_for(self.queue(uri).get(), WAIT)


def apply(text: str, edits: list[types.TextEdit]) -> str:
    lines = text.split("\n")
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        start, end = edit.range.start, edit.range.end
        assert start.line == end.line
        line = lines[start.line]
        lines[start.line] = line[:start.character] + edit.new_text + line[end.character:]
    return "\n".join(lines)


async def session(project: Path) -> dict:
    editor = Editor()
    client = editor.client
    await client.start_io(sys.executable, "-m", "rflint", "server", cwd=str(project))
    seen = {}
    try:
        init = await client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=from_fs_path(str(project)),
            workspace_folders=[types.WorkspaceFolder(from_fs_path(str(project)), "project")]))
        seen["capabilities"] = init.capabilities
        client.initialized(types.InitializedParams())
        model = project / "nets.py"
        uri = from_fs_path(str(model))
        document = types.TextDocumentIdentifier(uri)
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri, "python", 1, model.read_text())))
        seen["diagnostics"] = diagnostics = await editor.next_diagnostics(uri)

        rf002 = next(d for d in diagnostics if d.code == "RF002")
        seen["hover"] = await client.text_document_hover_async(
            types.HoverParams(document, types.Position(rf002.range.start.line, 12)))
        seen["hover_elsewhere"] = await client.text_document_hover_async(
            types.HoverParams(document, types.Position(0, 0)))

        rf003 = next(d for d in diagnostics if d.code == "RF003")
        seen["actions"] = actions = await client.text_document_code_action_async(types.CodeActionParams(
            document, rf003.range, types.CodeActionContext(diagnostics=[rf003])))

        patch = project / "patch.py"
        patch_document = types.TextDocumentIdentifier(from_fs_path(str(patch)))
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(patch_document.uri, "python", 1, patch.read_text())))
        seen["patch_diagnostics"] = await editor.next_diagnostics(patch_document.uri)
        patch_rf003 = next(d for d in seen["patch_diagnostics"] if d.code == "RF003")
        seen["patch_hover"] = await client.text_document_hover_async(
            types.HoverParams(patch_document, patch_rf003.range.start))
        seen["patch_actions"] = await client.text_document_code_action_async(types.CodeActionParams(
            patch_document, patch_rf003.range, types.CodeActionContext(diagnostics=[patch_rf003])))
        client.text_document_did_close(types.DidCloseTextDocumentParams(patch_document))
        seen["patch_closed"] = await editor.next_diagnostics(patch_document.uri)

        preferred = next(a for a in actions if a.is_preferred)
        model.write_text(apply(model.read_text(), preferred.edit.changes[uri]))  # what the editor does
        client.text_document_did_save(types.DidSaveTextDocumentParams(document))
        seen["after_fix"] = await editor.next_diagnostics(uri)
        await client.shutdown_async(None)
        client.exit(None)
    except BaseException:
        client._server.kill()  # a failed step: no exit request will come
        raise
    finally:
        await asyncio.wait_for(client.stop(), 60)
    seen["returncode"] = client._server.returncode
    return seen


@pytest.fixture(scope="module")
def lsp_session(tmp_path_factory) -> tuple[Path, dict]:
    project = tmp_path_factory.mktemp("project")
    (project / "pyproject.toml").write_text("[tool.rflint]\ninput-res = 12\n")
    (project / "nets.py").write_text(MODEL)
    (project / "patch.py").write_text(PATCHIFY)
    return project, asyncio.run(session(project))


def test_the_server_publishes_the_diagnostics_of_an_opened_file(lsp_session):
    _, seen = lsp_session
    assert seen["capabilities"].hover_provider and seen["capabilities"].code_action_provider
    found = {(d.code, d.range.start.line, d.range.start.character, d.source) for d in seen["diagnostics"]}
    assert found == {("RF002", 6, 11, "rflint"), ("RF003", 9, 0, "rflint")}  # 0-based: lines 7 and 10
    rf002 = next(d for d in seen["diagnostics"] if d.code == "RF002")
    assert rf002.message == "[shallow] layer has r_min >= 12 (2 r_min=15)"  # I_res 12 from [tool.rflint]
    assert rf002.severity == types.DiagnosticSeverity.Error


def test_hover_on_a_flagged_line_shows_r_min_r_max_and_i_res(lsp_session):
    _, seen = lsp_session
    text = seen["hover"].contents.value
    assert "| model | layer | r_min | r_max | I_res |" in text
    assert "| shallow | `2` | 15 | 15 | 12 |" in text
    assert seen["hover_elsewhere"] is None


def test_fixes_are_code_actions_safe_preferred(lsp_session):
    project, seen = lsp_session
    titles = [(a.title, a.is_preferred) for a in seen["actions"]]
    assert titles[0][1] and titles[0][0].endswith("(safe)"), titles
    assert all(not preferred for _, preferred in titles[1:])
    [edit] = seen["actions"][0].edit.changes[from_fs_path(str(project / "nets.py"))]
    line = MODEL.split("\n")[10]
    column = line.index("block(8, 2)") + len("block(8, ")
    assert (edit.range.start.line, edit.range.start.character, edit.range.end.character) == (10, column, column + 1)
    assert edit.new_text == "1"  # block(8, 2) -> block(8, 1): the stride literal of the second conv


def test_the_saved_fix_clears_the_diagnostics_and_the_server_exits_cleanly(lsp_session):
    _, seen = lsp_session
    assert list(seen["after_fix"]) == []
    assert seen["returncode"] == 0


def test_server_help():
    run = rflint("server", "--help")
    assert run.returncode == 0 and "usage: rflint server" in run.stdout and "stdio" in run.stdout


def test_an_unsafe_fix_is_labelled_and_not_preferred(lsp_session):
    _, seen = lsp_session
    [action] = seen["patch_actions"]
    assert not action.is_preferred
    assert action.title == ("rflint: patch 4x4/4 -> 2x2/2 of stem: I_min 20 -> 10 "
                            "(unsafe: parameter shapes change, checkpoints will not load)")
    assert sorted(edit.new_text for edits in action.edit.changes.values() for edit in edits) == ["2", "2"]


def test_hover_on_a_model_line_shows_its_limits(lsp_session):
    _, seen = lsp_session
    text = seen["patch_hover"].contents.value
    assert "| model | I_min | I_max | I_res |" in text and "| Patchify | 20 | 20 | 12 |" in text


def test_closing_a_file_clears_its_diagnostics(lsp_session):
    _, seen = lsp_session
    assert seen["patch_diagnostics"] and list(seen["patch_closed"]) == []


def test_without_pygls_the_server_says_what_to_install():
    hide_pygls = "import sys; sys.modules['pygls'] = None; from rflint.cli import main; sys.exit(main(['server']))"
    run = subprocess.run([sys.executable, "-c", hide_pygls], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr == "rflint: error: rflint server needs pygls: pip install 'rflint[server]'\n"


async def open_and_listen(project: Path, file: Path) -> list[str]:
    """Open ``file`` in a session and collect the messages the server shows the user."""
    shown: asyncio.Queue = asyncio.Queue()
    client = LanguageClient("rflint-test", "0")

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def on_message(params: types.ShowMessageParams) -> None:
        shown.put_nowait((params.type, params.message))

    await client.start_io(sys.executable, "-m", "rflint", "server", cwd=str(project))
    try:
        await client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=from_fs_path(str(project))))
        client.initialized(types.InitializedParams())
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(from_fs_path(str(file)), "python", 1, file.read_text())))
        message = await asyncio.wait_for(shown.get(), WAIT)
        await client.shutdown_async(None)  # still answering
        client.exit(None)
    except BaseException:
        client._server.kill()
        raise
    finally:
        await asyncio.wait_for(client.stop(), 60)
    return message


def test_a_bad_config_is_one_message_naming_the_key(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.rflint]\ninput-res = "big"\n')
    (tmp_path / "nets.py").write_text(MODEL)
    kind, message = asyncio.run(open_and_listen(tmp_path, tmp_path / "nets.py"))
    assert kind == types.MessageType.Error
    assert message.startswith("rflint: ") and "input-res" in message and "big" in message and "\n" not in message
