"""``aegis-vault get NAME`` through a broker, on the fast path (``cli/fast_get.py``).

The fast path skips the argument parser and the project's broker client, so it must
send the same request and treat every answer as they do. Here a scripted broker (a
real Unix socket in a private runtime folder, answering what each test scripts)
stands in for ``aegis-vault serve``, so each kind of answer, including the broken
ones a real broker never sends, can be tried; ``tests/cli/test_broker_cli.py`` runs
the same command against the real broker. The CLI runs as a real subprocess with no
vault key: whatever it prints came from the socket.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aegis_tui.cli import fast_get
from aegis_tui.core.broker import client as broker_client
from aegis_tui.core.broker import wire
from aegis_tui.core.broker.runtime import socket_path
from aegis_tui.core.paths import vault_path
from tests.support.scripted_broker import VALUE, ScriptedBroker, broker_socket_for, value_answer

@pytest.fixture
def scripted(env_vault) -> Iterator[tuple[ScriptedBroker, Callable[..., object]]]:  # type: ignore[no-untyped-def]
    """(the scripted broker, ``get(*args, env=...)`` running ``aegis-vault`` without a key)."""
    cli = env_vault  # a real vault: the long way, when taken, finds one (and no key to open it)
    runtime, path = broker_socket_for(cli.env["AEGIS_VAULT_HOME"])
    broker = ScriptedBroker(path)

    def get(*args: str, env: dict[str, str] | None = None, timeout: float = 60):  # type: ignore[no-untyped-def]
        return cli("get", *args, env={"XDG_RUNTIME_DIR": runtime, "AEGIS_VAULT_KEY": None, **(env or {})},
                   timeout=timeout)

    try:
        yield broker, get
    finally:
        broker.close()
        shutil.rmtree(runtime, ignore_errors=True)


# -- the request ---------------------------------------------------------------------------------------
def test_the_fast_path_sends_the_same_get_request_as_the_broker_client_and_prints_the_value_raw(scripted):
    broker, get = scripted
    result = get("api")
    assert (result.returncode, result.stdout, result.err) == (0, VALUE, "")
    assert broker.requests == [b'{"v":1,"id":1,"op":"get","args":{"ref":"api"}}\n']
    sent = json.loads(broker.requests[0])
    assert sent == json.loads(wire.encode_request(1, "get", {"ref": "api"}, None))


def test_the_agent_session_token_goes_with_the_request(scripted):
    broker, get = scripted
    token = "ast_" + "x" * 43
    assert get("api", env={"AEGIS_SESSION": token}).returncode == 0
    assert json.loads(broker.requests[0]) == {"v": 1, "id": 1, "op": "get", "args": {"ref": "api"},
                                              "session": token}


@pytest.mark.parametrize("name", ['quote"d', "back\\slash", "ünïcødé/名前", "aegis://acme/prod/db"])
def test_a_name_is_sent_as_exact_json_text(scripted, name):
    broker, get = scripted
    assert get(name).returncode == 0
    assert json.loads(broker.requests[0])["args"] == {"ref": name}


# -- the answer ------------------------------------------------------------------------------------------
def test_a_binary_value_with_newlines_comes_back_byte_exact(scripted):
    broker, get = scripted
    value = bytes(range(256)) + b"\n\n"
    broker.reply = lambda line: value_answer(value)
    assert get("api").stdout == value


def test_a_value_at_the_size_limit_comes_back_whole(scripted):
    """The broker client used to stop reading at 256 KiB: a larger value failed as
    'the broker closed the connection'."""
    broker, get = scripted
    value = os.urandom(16 * 1024 * 1024)
    broker.reply = lambda line: value_answer(value)
    result = get("api", timeout=120)
    assert result.returncode == 0, result.err
    assert result.stdout == value


def test_an_exposed_credential_prints_the_value_and_one_warning(scripted):
    broker, get = scripted
    broker.reply = lambda line: value_answer(VALUE, name="api", status="exposed")
    result = get("api")
    assert result.stdout == VALUE
    assert result.err == "aegis-vault: warning: 'api' is marked exposed; rotate it\n"


@pytest.mark.parametrize(("code", "exit_code", "message"), [
    ("denied", 9, "no one approved access to 'api'"),
    ("not_found", 4, "no credential matches 'api'; see: aegis-vault list"),
    ("refused", 8, "'api' is revoked"),
    ("protocol", 2, "get: argument 'ref' has the wrong type or is too long"),
    ("made_up_by_a_newer_broker", 1, "something new"),
])
def test_a_broker_error_is_one_line_with_the_same_exit_code_as_through_the_client(scripted, expect_error, code,
                                                                                   exit_code, message):
    broker, get = scripted
    body = {"code": code, "message": message, "exit": exit_code}
    broker.reply = lambda line: json.dumps({"v": 1, "id": 1, "ok": False, "error": body}).encode() + b"\n"
    result = get("api")
    assert expect_error(result, exit_code) == f"aegis-vault: {message}"
    assert result.stdout == b""
    rebuilt = wire.error_from_wire(body)
    assert (rebuilt.exit_code, str(rebuilt)) == (exit_code, message)


@pytest.mark.parametrize("reply", [
    b"",  # hung up
    b'{"v":1,"id":1,"ok":true,"result":{"name":"api"',  # cut short
    b"not json\n",
    b'{"v":1,"id":1,"ok":true,"result":{"name":"api","value_b64":"YQ"}}\n',  # bad padding
    b'{"v":1,"id":1,"ok":true,"result":{"name":"api","value_b64":NaN}}\n',
    b'{"v":1,"id":1,"ok":true,"result":["api"]}\n',
    b'{"v":1,"id":1,"ok":true,"result":{"name":"api","value_b64":"YQ=="}} trailing\n',
    b"\xff\xfe\n",
], ids=["hung-up", "cut-short", "not-json", "bad-base64", "nan", "wrong-shape", "trailing", "not-utf8"])
def test_a_broken_answer_is_one_line_exit_1_and_prints_no_value(scripted, expect_error, reply):
    broker, get = scripted
    broker.reply = lambda line: reply
    result = get("api")
    line = expect_error(result, 1)
    assert "broker" in line and "Traceback" not in result.err
    assert result.stdout == b""


# -- when the fast path steps aside -----------------------------------------------------------------------
def test_a_stale_socket_sends_get_the_long_way_which_reports_the_missing_key(scripted, expect_error):
    """Nobody listens (a broker that died): the long way unlocks, and without a key says so."""
    broker, get = scripted
    broker.close()
    result = get("api")
    expect_error(result, 3, mentions=("AEGIS_VAULT_KEY",))
    assert broker.requests == []


def test_options_after_the_name_take_the_long_way_and_reach_the_same_broker(scripted):
    broker, get = scripted
    result = get("api", "--reason", "deploy")
    assert (result.returncode, result.stdout) == (0, VALUE)
    sent = json.loads(broker.requests[0])
    assert sent["op"] == "get" and sent["args"]["ref"] == "api" and sent["args"]["reason"] == "deploy"


def test_a_socket_in_a_runtime_folder_open_to_others_is_never_asked(scripted, expect_error):
    """Anyone who can write there could have put their socket in place of the broker's;
    the long way does not ask it either, and tries to unlock instead."""
    broker, get = scripted
    folder = os.path.dirname(broker.path)
    os.chmod(folder, 0o755)
    try:
        expect_error(get("api"), 3, mentions=("AEGIS_VAULT_KEY",))
    finally:
        os.chmod(folder, 0o700)
    assert broker.requests == []


# -- where the socket is: the same answer as core.paths and core.broker.runtime -----------------------
@pytest.fixture
def clean_env(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    for name in ("AEGIS_VAULT_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def _make_vault_and_socket(home: Path) -> str:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    (home / "vault.db").write_bytes(b"")
    path = socket_path(vault_path(), create=True)
    Path(path).touch()
    return path


@pytest.mark.parametrize("layout", ["explicit-home", "tilde-home", "xdg-data-home", "default-home"])
@pytest.mark.parametrize("runtime", ["xdg-runtime-dir", "xdg-runtime-dir-missing", "tmp-fallback"])
def test_the_fast_path_finds_the_socket_exactly_where_the_broker_listens(clean_env, tmp_path, layout, runtime):
    home = {"explicit-home": tmp_path / "explicit", "tilde-home": tmp_path / "home" / "vaults",
            "xdg-data-home": tmp_path / "data" / "aegis-vault",
            "default-home": tmp_path / "home" / ".local" / "share" / "aegis-vault"}[layout]
    if layout == "explicit-home":
        clean_env.setenv("AEGIS_VAULT_HOME", str(home))
    elif layout == "tilde-home":
        clean_env.setenv("AEGIS_VAULT_HOME", "~/vaults")
    elif layout == "xdg-data-home":
        clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    run_dir = tempfile.mkdtemp(prefix="aeg-", dir="/tmp")
    try:
        if runtime == "xdg-runtime-dir":
            clean_env.setenv("XDG_RUNTIME_DIR", run_dir)
        elif runtime == "xdg-runtime-dir-missing":
            clean_env.setenv("XDG_RUNTIME_DIR", os.path.join(run_dir, "gone"))
        path = _make_vault_and_socket(home)
        assert fast_get.broker_socket_path() == path
        os.unlink(path)
        assert fast_get.broker_socket_path() is None  # no socket, no broker
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def test_the_fast_path_steps_aside_wherever_the_runtime_module_would_refuse(clean_env, tmp_path):
    clean_env.setenv("AEGIS_VAULT_HOME", str(tmp_path / "v"))
    run_dir = tempfile.mkdtemp(prefix="aeg-", dir="/tmp")
    clean_env.setenv("XDG_RUNTIME_DIR", run_dir)
    try:
        path = _make_vault_and_socket(tmp_path / "v")
        folder = os.path.dirname(path)
        os.chmod(folder, 0o750)
        assert fast_get.broker_socket_path() is None
        os.chmod(folder, 0o700)
        os.unlink(tmp_path / "v" / "vault.db")
        assert fast_get.broker_socket_path() is None  # no vault: the long way says "aegis-vault init"
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def test_the_fast_path_waits_as_long_as_the_client_and_reads_answers_as_large():
    assert fast_get.APPROVAL_WAIT_SECONDS == broker_client.APPROVAL_WAIT_SECONDS
    assert fast_get.MAX_ANSWER_BYTES == wire.MAX_ANSWER_BYTES


def test_the_fast_path_module_runs_without_the_project_on_the_success_path():
    """It imports nothing of aegis_tui at module level (the error path imports the rest)."""
    source = Path(fast_get.__file__).read_text()
    top_level = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert top_level == ["import os", "import sys"], top_level
