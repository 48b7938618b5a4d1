"""``bwrap_argv`` applied by the real bubblewrap: what is hidden cannot be read, what is
read-only cannot be written, and the agent cannot undo either (not even as root)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aegis_tui.core.sandbox.bwrap import bwrap_argv, find_bwrap
from aegis_tui.core.sandbox.plan import SandboxPlan

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or find_bwrap() is None,
                                reason="needs a working bubblewrap (apt-get install bubblewrap)")
SECRET = "sandbox-canary-" + "7d3e19" * 4


@pytest.fixture
def place(tmp_path: Path) -> dict[str, Path]:
    hidden_dir = tmp_path / "hidden"
    hidden_dir.mkdir()
    (hidden_dir / "vault.db").write_text(SECRET)
    (tmp_path / "hidden-file").write_text(SECRET)
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "module.py").write_text("x = 1\n")
    (tmp_path / "project").mkdir()
    return {"dir": hidden_dir, "file": tmp_path / "hidden-file", "code": tmp_path / "code",
            "project": tmp_path / "project"}


def plan_of(place: dict[str, Path], network: str = "host", *extra_hidden: str) -> SandboxPlan:
    return SandboxPlan(hidden=((str(place["dir"]), "test"), (str(place["file"]), "test"),
                               *((path, "test") for path in extra_hidden)),
                       read_only=((str(place["code"]), "test"),), network=network)


def inside(plan: SandboxPlan, script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(bwrap_argv(plan, ["sh", "-c", script], cwd=str(cwd)), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_a_hidden_folder_is_empty_and_a_hidden_file_gives_nothing(place: dict[str, Path]) -> None:
    ran = inside(plan_of(place), f"ls -A {place['dir']}; cat {place['dir']}/vault.db; cat {place['file']}; "
                                 "echo done", place["project"])
    assert SECRET not in ran.stdout + ran.stderr
    assert ran.stdout.strip() == "done"
    assert subprocess.run(bwrap_argv(plan_of(place), ["cat", str(place["dir"] / "vault.db")], cwd="/"),
                          capture_output=True, timeout=60).returncode != 0


def test_a_read_only_place_refuses_writes_and_the_project_takes_them(place: dict[str, Path]) -> None:
    ran = inside(plan_of(place), f"echo y > {place['code']}/module.py; echo $?; echo made > new.txt",
                 place["project"])
    assert ran.stdout.split()[0] != "0" and "Read-only" in ran.stderr
    assert (place["code"] / "module.py").read_text() == "x = 1\n"
    assert (place["project"] / "new.txt").read_text() == "made\n"


def test_the_sandbox_cannot_unmount_what_hides_or_protects(place: dict[str, Path]) -> None:
    """As root, bwrap alone left the tmpfs unmountable from inside; the vault came back."""
    script = (f"umount {place['dir']}; umount -l {place['dir']}; umount {place['file']}; umount {place['code']}; "
              f"unshare -rm sh -c 'umount {place['dir']}; cat {place['dir']}/vault.db'; "
              f"cat {place['dir']}/vault.db {place['file']}; echo y > {place['code']}/module.py; echo end")
    ran = inside(plan_of(place), script, place["project"])
    assert SECRET not in ran.stdout + ran.stderr
    assert ran.stdout.strip().endswith("end")
    assert (place["code"] / "module.py").read_text() == "x = 1\n"


def test_only_the_sandbox_processes_are_visible(place: dict[str, Path]) -> None:
    ran = inside(plan_of(place), "ls /proc | grep -E '^[0-9]+$'", place["project"])
    pids = {int(line) for line in ran.stdout.split()}
    assert os.getpid() not in pids and len(pids) < 10, pids


@pytest.fixture
def listening_unix(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "s.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    yield path
    server.close()


def test_a_hidden_socket_cannot_be_reached(place: dict[str, Path], listening_unix: str) -> None:
    probe = f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({listening_unix!r}); print('reached')"
    argv = [sys.executable, "-c", probe]
    visible = subprocess.run(bwrap_argv(plan_of(place), argv, cwd="/"), capture_output=True, text=True, timeout=60)
    assert visible.stdout.strip() == "reached", visible.stderr
    hidden = subprocess.run(bwrap_argv(plan_of(place, "host", listening_unix), argv, cwd="/"), capture_output=True,
                            text=True, timeout=60)
    assert hidden.returncode != 0 and "reached" not in hidden.stdout


def test_network_none_cuts_even_the_loopback_of_the_host(place: dict[str, Path]) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5); print('reached')"
    try:
        host = subprocess.run(bwrap_argv(plan_of(place, "host"), [sys.executable, "-c", probe], cwd="/"),
                              capture_output=True, text=True, timeout=60)
        cut = subprocess.run(bwrap_argv(plan_of(place, "none"), [sys.executable, "-c", probe], cwd="/"),
                             capture_output=True, text=True, timeout=60)
    finally:
        server.close()
    assert host.stdout.strip() == "reached", host.stderr
    assert cut.returncode != 0 and "reached" not in cut.stdout


@pytest.mark.parametrize("nested", [
    "bwrap --ro-bind / / true",
    "bwrap --unshare-user --ro-bind / / --unshare-pid --dev /dev true",
])
def test_a_nested_bwrap_runs(place: dict[str, Path], nested: str) -> None:
    ran = inside(plan_of(place), nested, place["project"])
    assert ran.returncode == 0, ran.stderr


def test_the_command_gets_the_working_folder_and_no_new_privileges(place: dict[str, Path]) -> None:
    ran = inside(plan_of(place), "pwd; grep NoNewPrivs /proc/self/status", place["project"])
    lines = ran.stdout.split("\n")
    assert lines[0] == str(place["project"])
    assert lines[1].split() == ["NoNewPrivs:", "1"]


def test_no_bwrap_on_path_means_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_bwrap() is None
