"""Attack: an agent started with ``session exec`` goes around the broker, with nothing
but what a process of the same user can do: read the vault file or the config folder,
unmount what hides them, look at the broker and the user's other processes in ``/proc``,
ask the OS keyring over the D-Bus session bus, find an ``AEGIS_*`` variable, change
aegis-vault's own code, talk to the owner's socket.

Before issue 12 each of these worked: ``session exec`` ran the agent as an ordinary
child. Now the agent runs in a bubblewrap sandbox (``core/sandbox``). Everything is
real: a headless ``aegis-vault serve`` (``tests/security/conftest.py``), a private
``dbus-daemon``, bwrap, and a Python script as the agent, which reports what it managed
to a file in its project folder. The agent holds one grant (``dev-db``, standing, in
its context), so it has something legitimate to do too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import aegis_tui
from aegis_tui.core.sandbox.bwrap import find_bwrap
from tests.support.attacker import VALUES, ok, session_by_label, start_session
from tests.support.broker import Outcome, aegis, audit_entries, without_key

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or find_bwrap() is None,
                                reason="needs Linux and a working bubblewrap (apt-get install bubblewrap)")

CONFIG_CANARY = "config-canary-" + "51ab09" * 4

# The agent: tries everything, writes what it got to ``result.json`` in its folder.
AGENT = r'''
import json, os, socket, subprocess, sys

args = json.loads(sys.argv[1])
out = {}


def attempt(action):
    try:
        return action()
    except Exception as error:
        return "refused: " + type(error).__name__


def read(path):
    with open(path, "rb") as handle:
        return handle.read().decode("latin-1")


def connect(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
    return "connected"


def open_for_writing(path):
    os.close(os.open(path, os.O_WRONLY | os.O_APPEND))  # writes nothing even where it may
    return "writable"


out["vault"] = attempt(lambda: len(read(args["vault"])))
out["vault_folder"] = attempt(lambda: sorted(os.listdir(args["vault_folder"])))
out["config_folder"] = attempt(lambda: sorted(os.listdir(args["config_folder"])))
out["config_file"] = attempt(lambda: read(args["config_file"]))
out["umount"] = [subprocess.run(command, capture_output=True).returncode for command in (
    ["umount", args["vault_folder"]], ["umount", "-l", args["vault_folder"]],
    ["unshare", "-rm", "umount", args["vault_folder"]])]
out["vault_after_umount"] = attempt(lambda: len(read(args["vault"])))
processes = {}
for name in os.listdir("/proc"):
    if name.isdigit():
        processes[name] = attempt(lambda: read(f"/proc/{name}/cmdline").replace("\0", " "))
out["processes"] = processes
out["pids_seen"] = [int(pid) for pid in processes]
out["aegis_variables"] = sorted(key for key in os.environ if key.startswith("AEGIS_"))
out["aegis_in_environs"] = [pid for pid in processes if "AEGIS_" in str(attempt(lambda: read(f"/proc/{pid}/environ")))]
out["bus_variable"] = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
out["bus"] = attempt(lambda: connect(args["bus"]))
out["owner_socket"] = attempt(lambda: connect(args["owner_socket"]))
out["runtime_folder"] = attempt(lambda: sorted(os.listdir(args["runtime_folder"])))
out["code"] = {path: attempt(lambda: open_for_writing(path)) for path in args["code"]}
out["new_code_file"] = attempt(lambda: open(os.path.join(args["package"], f"planted_{os.getpid()}.py"), "x").close()
                              or "created")


def ask(op, op_args=None, session=None):
    """One request on the session's socket, as a client written by the agent would send it."""
    message = {"v": 1, "id": 1, "op": op, "args": op_args or {}}
    if session:
        message["session"] = session
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(os.path.join(args["runtime_folder"], "session.sock"))
        sock.sendall(json.dumps(message).encode() + b"\n")
        line = sock.makefile("rb").readline()
    return json.loads(line) if line.strip() else None


if args.get("other_token"):
    out["as_other"] = attempt(lambda: ask("list", session=args["other_token"]))
    out["end_other"] = attempt(lambda: ask("session.end", {"id": args["other_id"]}))
    out["owner_op"] = attempt(lambda: ask("audit.note", {"text": "written by the agent"}))
    out["sessions_seen"] = attempt(lambda: ask("session.list"))
listed = subprocess.run(["aegis-vault", "list", "--json"], capture_output=True, text=True)
out["listed"] = attempt(lambda: sorted(item["name"] for item in json.loads(listed.stdout)))
out["nested"] = [subprocess.run(command, capture_output=True).returncode for command in (
    ["bwrap", "--ro-bind", "/", "/", "true"],
    ["bwrap", "--unshare-user", "--ro-bind", "/", "/", "--unshare-pid", "--dev", "/dev", "true"])]
with open("result.json", "w") as handle:
    json.dump(out, handle)
'''


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[str]:
    """A private D-Bus session bus on a path socket (what dbus-run-session makes here)."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is needed (apt-get install dbus)")
    folder = Path(os.path.realpath(tmp_path)) / "dbus"
    folder.mkdir()
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1",
                               f"--address=unix:path={folder}/bus"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    assert daemon.stdout is not None
    address = daemon.stdout.readline().strip()
    assert address.startswith("unix:path="), address
    try:
        yield address
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "agent.py").write_text(AGENT)
    return folder


def installed_code() -> list[str]:
    package = os.path.dirname(os.path.realpath(aegis_tui.__file__))
    found = [os.path.join(package, "__init__.py")]
    script = shutil.which("aegis-vault", path=os.path.dirname(sys.executable))
    if script:
        found.append(script)
    return found


def planted_files() -> list[Path]:
    return list(Path(os.path.dirname(os.path.realpath(aegis_tui.__file__))).glob("planted_*.py"))


def attack(owner, broker, project: Path, bus: str, *options: str,  # type: ignore[no-untyped-def]
           **more: str) -> tuple[Outcome, dict[str, Any]]:
    """``session exec [OPTIONS] -- python agent.py`` as the agent starts it (no key).
    Whatever the agent managed to plant in the package is removed again at once."""
    home = Path(owner.env["AEGIS_VAULT_HOME"])
    config = Path(owner.env["HOME"]) / ".config" / "aegis-vault"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(f"# {CONFIG_CANARY}\n")
    args = {"vault": str(home / "vault.db"), "vault_folder": str(home), "config_folder": str(config),
            "config_file": str(config / "config.toml"), "bus": bus.split("=", 1)[1].split(",")[0],
            "owner_socket": broker.socket_path, "runtime_folder": broker.folder, "code": installed_code(),
            "package": os.path.dirname(os.path.realpath(aegis_tui.__file__)), **more}
    env = {**without_key(owner.env), "DBUS_SESSION_BUS_ADDRESS": bus}
    ran = aegis(env, "session", "exec", *options, "--context", "acme/dev", "--", sys.executable, "agent.py",
                json.dumps(args), cwd=project)
    result = project / "result.json"
    for planted in planted_files():
        planted.unlink()
    assert result.exists(), (ran.returncode, ran.err)
    return ran, json.loads(result.read_text())


@pytest.fixture
def granted(owner, broker):  # type: ignore[no-untyped-def]
    ok(owner("grants", "add", "dev-db", "--context", "acme/dev", "--reason", "the agent's one grant"))
    return owner


def test_the_agent_cannot_read_the_vault_or_the_config_even_after_unmounting(granted, broker, project, bus):
    ran, seen = attack(granted, broker, project, bus)
    assert ran.returncode == 0, ran.err
    assert str(seen["vault"]).startswith("refused") or seen["vault"] == 0, seen["vault"]
    assert seen["vault_folder"] == [] or str(seen["vault_folder"]).startswith("refused")
    assert seen["config_folder"] == [] or str(seen["config_folder"]).startswith("refused")
    assert str(seen["config_file"]).startswith("refused")
    assert all(code != 0 for code in seen["umount"]), seen["umount"]
    assert str(seen["vault_after_umount"]).startswith("refused")
    assert CONFIG_CANARY not in json.dumps(seen)


def test_the_agent_sees_no_process_outside_its_sandbox(granted, broker, project, bus):
    _, seen = attack(granted, broker, project, bus)
    commands = [str(command) for command in seen["processes"].values()]
    marks = ("-m aegis_tui serve", "aegis_tui session exec", "dbus-daemon --session", "exec(eval(sys.stdin")
    outside = [command[:120] for command in commands if any(mark in command for mark in marks)]
    assert outside == [], outside
    assert len(seen["pids_seen"]) < 10, [command[:120] for command in commands]


def test_the_agent_cannot_reach_the_session_bus_or_find_an_aegis_variable(granted, broker, project, bus):
    _, seen = attack(granted, broker, project, bus)
    assert seen["bus_variable"] is None
    assert str(seen["bus"]).startswith("refused"), seen["bus"]
    assert seen["aegis_variables"] == [] and seen["aegis_in_environs"] == []


def test_the_agent_cannot_change_aegis_vaults_installed_code(granted, broker, project, bus):
    _, seen = attack(granted, broker, project, bus)
    assert all(str(outcome).startswith("refused") for outcome in seen["code"].values()), seen["code"]
    assert str(seen["new_code_file"]).startswith("refused"), seen["new_code_file"]


def test_the_owner_socket_is_hidden_and_the_runtime_folder_holds_only_the_session_socket(granted, broker, project,
                                                                                          bus):
    _, seen = attack(granted, broker, project, bus)
    assert str(seen["owner_socket"]).startswith("refused"), seen["owner_socket"]
    assert seen["runtime_folder"] == ["session.sock"], seen["runtime_folder"]


def test_the_agent_uses_its_session_and_cannot_speak_for_another_or_as_the_owner(granted, broker, project, bus):
    other_token = start_session(granted.env, "acme/prod", label="other")
    other = session_by_label(granted.env, "other")
    _, seen = attack(granted, broker, project, bus, other_token=other_token, other_id=other["id"])
    assert seen["listed"] == ["dev-db", "dev-other"], seen["listed"]
    for attempt in ("as_other", "end_other", "owner_op"):
        reply = seen[attempt]
        assert isinstance(reply, dict) and reply.get("ok") is False, (attempt, reply)
    assert "prod-db" not in json.dumps(seen)
    assert other["id"] not in json.dumps(seen["sessions_seen"])
    assert session_by_label(granted.env, "other")["state"] == "active"


def test_a_nested_bwrap_runs_inside_the_sandbox(granted, broker, project, bus):
    _, seen = attack(granted, broker, project, bus)
    assert seen["nested"] == [0, 0]


def test_no_secret_reaches_the_agents_output(granted, broker, project, bus):
    ran, seen = attack(granted, broker, project, bus)
    text = ran.out + ran.err + json.dumps(seen)
    assert not [name for name, value in VALUES.items() if value in text]


# -- the command line ---------------------------------------------------------------------------
def path_without_bwrap() -> str:
    """Only this virtualenv's scripts: python and aegis-vault, no bwrap."""
    folder = os.path.dirname(sys.executable)
    assert not os.path.exists(os.path.join(folder, "bwrap"))
    return folder


def test_require_sandbox_without_bwrap_refuses_with_one_line_and_starts_nothing(owner, broker, project):
    marker = project / "started"
    env = {**without_key(owner.env), "PATH": path_without_bwrap()}
    ran = aegis(env, "session", "exec", "--require-sandbox", "--context", "acme/dev", "--", sys.executable, "-c",
                f"open({str(marker)!r}, 'w')", cwd=project)
    assert ran.returncode == 2
    lines = ran.err.strip().splitlines()
    assert len(lines) == 1 and "bwrap" in lines[0] and "sandbox" in lines[0], ran.err
    assert not marker.exists()


def test_without_bwrap_the_agent_runs_and_stderr_says_containment_is_off(owner, broker, project):
    marker = project / "started"
    env = {**without_key(owner.env), "PATH": path_without_bwrap()}
    ran = aegis(env, "session", "exec", "--context", "acme/dev", "--", sys.executable, "-c",
                f"open({str(marker)!r}, 'w')", cwd=project)
    assert ran.returncode == 0, ran.err
    assert marker.exists()
    assert "containment is off" in ran.err


def test_no_sandbox_is_explicit_warned_and_audited(owner, broker, project):
    marker = project / "started"
    ran = aegis(without_key(owner.env), "session", "exec", "--no-sandbox", "--context", "acme/dev", "--",
                sys.executable, "-c", f"open({str(marker)!r}, 'w')", cwd=project)
    assert ran.returncode == 0, ran.err
    assert marker.exists()
    assert "without a sandbox" in ran.err
    assert [entry for entry in audit_entries(owner.env) if entry.get("action", entry.get("operation")) ==
            "session.unsandboxed" or "session.unsandboxed" in json.dumps(entry)]


def test_explain_names_what_is_hidden_and_why_and_starts_nothing(owner, project):
    """No broker and no key: explaining needs neither."""
    (Path(owner.env["HOME"]) / ".aws").mkdir()
    marker = project / "started"
    ran = aegis(without_key(owner.env), "session", "exec", "--explain", "--context", "acme/dev", "--",
                sys.executable, "-c", f"open({str(marker)!r}, 'w')", cwd=project)
    assert ran.returncode == 0, ran.err
    assert not marker.exists()
    assert owner.env["AEGIS_VAULT_HOME"] in ran.out
    assert str(Path(owner.env["HOME"]) / ".aws") in ran.out
    assert "network" in ran.out.lower() and "D-Bus" in ran.out
    assert "read-only" in ran.out.lower()
