"""Provider hooks as real subprocesses: small Python scripts written to tmp_path and run
with this interpreter. Nothing is mocked; the credential comes from a real vault."""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from aegis_tui.core.lifecycle.hooks import KILL_GRACE, OUTPUT_LIMIT, run_revoke_hook, run_rotate_hook
from aegis_tui.core.lifecycle.policy import Hook
from aegis_tui.core.models import Credential
from aegis_tui.core.secret import Secret

OLD = "sk_live_Q7fj2LmX9pRt4WzK"  # 24 characters
NEW = "sk_live_N3wV4lu3Xy8Zq1Rs"
PRELUDE = "import json, os, signal, subprocess, sys, time\n"


@pytest.fixture
def credential(creds) -> Credential:  # type: ignore[no-untyped-def]
    return creds.add("stripe", Secret(OLD), service="Stripe", context="acme/prod")


@pytest.fixture
def script(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``script(body)``: argv running ``body`` (after a few imports) with this Python."""
    def make(body: str, name: str = "hook.py") -> tuple[str, ...]:
        path = tmp_path / name
        path.write_text(PRELUDE + body)
        return (sys.executable, str(path))
    return make


def hook(argv: tuple[str, ...], timeout: float = 30.0, revoke: tuple[str, ...] = ()) -> Hook:
    return Hook("stripe", argv, revoke, timeout)


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} was never written")


def no_part_of(value: str, text: str, size: int = 6) -> bool:
    return not any(value[i:i + size] in text for i in range(len(value) - size + 1))


# -- rotate: success ---------------------------------------------------------------------------------
def test_a_rotate_hook_gets_the_old_value_on_stdin_and_its_stdout_becomes_the_new_value(
        script, credential: Credential, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = tmp_path / "report.json"
    argv = script(f"""
seen = {{"stdin": sys.stdin.read(), "env": {{k: v for k, v in os.environ.items() if k.startswith("AEGIS_")}}}}
open({str(report)!r}, "w").write(json.dumps(seen))
print({NEW!r})
""")
    result = run_rotate_hook(hook(argv), Secret(OLD), credential)
    assert result.ok, result.reason
    assert result.value == Secret(NEW)
    assert result.reason == "hook stripe made a new value"
    assert result.seconds > 0
    seen = json.loads(report.read_text())
    assert seen["stdin"] == OLD
    assert seen["env"] == {"AEGIS_CREDENTIAL": "stripe", "AEGIS_CONTEXT": "acme/prod", "AEGIS_SERVICE": "Stripe",
                           "AEGIS_VERSION": "1"}


@pytest.mark.parametrize("printed, expected", [
    (NEW + "\r\n", NEW), (NEW, NEW), (NEW + "\n\n", NEW + "\n"), ("  " + NEW + " \n", "  " + NEW + " ")])
def test_exactly_one_trailing_line_ending_is_removed_from_the_new_value(
        script, credential: Credential, printed: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    argv = script(f"sys.stdout.buffer.write({printed.encode()!r})")
    result = run_rotate_hook(hook(argv), Secret(OLD), credential)
    assert result.ok and result.value == Secret(expected)


# -- rotate: refusals ----------------------------------------------------------------------------------
def test_a_failing_hook_reports_its_status_and_shows_its_stderr_with_old_and_new_values_masked(
        script, credential: Credential) -> None:  # type: ignore[no-untyped-def]
    encoded = base64.b64encode(OLD.encode()).decode()
    argv = script(f"""
print({NEW!r})
sys.stderr.write("rejected old key " + sys.stdin.read() + " (base64 {encoded}); would have used {NEW}\\n")
sys.exit(3)
""")
    result = run_rotate_hook(hook(argv), Secret(OLD), credential)
    assert not result.ok and result.value is None
    assert result.reason == "hook stripe exited with status 3"
    assert result.output == ("rejected old key [aegis:stripe] (base64 [aegis:stripe]); "
                             "would have used [aegis:stripe]\n")
    for secret in (OLD, NEW, encoded):
        assert secret not in result.reason


def test_a_hook_that_hangs_is_killed_with_its_grandchild_at_the_timeout(
        script, credential: Credential, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "grandchild.pid"
    argv = script(f"""
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open({str(pid_file)!r}, "w").write(str(child.pid))
time.sleep(60)
""")
    started = time.monotonic()
    result = run_rotate_hook(hook(argv, timeout=1), Secret(OLD), credential)
    elapsed = time.monotonic() - started
    assert elapsed < 1 + KILL_GRACE + 3
    assert not result.ok and result.value is None
    assert result.reason == "hook stripe timed out after 1s"
    grandchild = int(wait_for_file(pid_file))
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(grandchild)


def test_a_hook_ignoring_sigterm_is_killed_after_the_grace(script, credential: Credential) -> None:  # type: ignore[no-untyped-def]
    argv = script("signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n")
    started = time.monotonic()
    result = run_rotate_hook(hook(argv, timeout=0.5), Secret(OLD), credential)
    assert time.monotonic() - started < 0.5 + KILL_GRACE + 3
    assert result.reason == "hook stripe timed out after 0.5s"


def test_a_program_that_escaped_the_group_holding_the_pipes_does_not_keep_us_waiting(
        script, credential: Credential, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "escaped.pid"
    argv = script(f"""
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
open({str(pid_file)!r}, "w").write(str(child.pid))
print({NEW!r}, flush=True)
""")
    try:
        started = time.monotonic()
        result = run_rotate_hook(hook(argv, timeout=20), Secret(OLD), credential)
        assert time.monotonic() - started < KILL_GRACE + 5
        assert result.ok and result.value == Secret(NEW)
    finally:
        os.kill(int(wait_for_file(pid_file)), signal.SIGKILL)  # the sleeper this test started


@pytest.mark.parametrize("body", ["pass", "print()", "sys.stdout.write('\\r\\n')"])
def test_a_hook_that_prints_nothing_is_refused(script, credential: Credential, body: str) -> None:  # type: ignore[no-untyped-def]
    result = run_rotate_hook(hook(script(body)), Secret(OLD), credential)
    assert (result.ok, result.value, result.reason) == (False, None, "hook stripe printed nothing")


def test_a_hook_that_prints_the_old_value_again_is_refused(script, credential: Credential) -> None:  # type: ignore[no-untyped-def]
    result = run_rotate_hook(hook(script("print(sys.stdin.read())")), Secret(OLD), credential)
    assert (result.ok, result.value) == (False, None)
    assert result.reason == "hook stripe printed the old value again"


def test_a_missing_executable_is_a_failed_result_not_an_exception(credential: Credential, tmp_path: Path) -> None:
    result = run_rotate_hook(hook((str(tmp_path / "no-such-hook"),)), Secret(OLD), credential)
    assert not result.ok and result.value is None
    assert result.reason.startswith("hook stripe could not start: ")
    assert str(tmp_path / "no-such-hook") in result.reason


def test_a_file_that_is_not_executable_is_a_failed_result(credential: Credential, tmp_path: Path) -> None:
    path = tmp_path / "not-executable.sh"
    path.write_text("#!/bin/sh\necho new-value-123456\n")
    result = run_rotate_hook(hook((str(path),)), Secret(OLD), credential)
    assert not result.ok
    assert result.reason.startswith("hook stripe could not start: Permission denied")


def test_a_hook_killed_by_a_signal_says_so(script, credential: Credential) -> None:  # type: ignore[no-untyped-def]
    result = run_rotate_hook(hook(script("os.kill(os.getpid(), signal.SIGKILL)")), Secret(OLD), credential)
    assert result.reason == "hook stripe was killed by signal 9"


def test_a_hook_that_never_reads_stdin_still_runs_with_a_large_old_value(script, credential: Credential) -> None:  # type: ignore[no-untyped-def]
    large = Secret("k" * (1024 * 1024))  # far more than a pipe holds
    result = run_rotate_hook(hook(script(f"print({NEW!r})"), timeout=20), large, credential)
    assert result.ok and result.value == Secret(NEW)


# -- what reaches the user ------------------------------------------------------------------------------
def test_long_stderr_keeps_only_the_last_few_kib(script, credential: Credential) -> None:  # type: ignore[no-untyped-def]
    argv = script("sys.stderr.write('line of noise\\n' * 50000 + 'the end\\n')\nsys.exit(1)\n")
    result = run_rotate_hook(hook(argv), Secret(OLD), credential)
    assert result.output.startswith("…")
    assert result.output.endswith("line of noise\nthe end\n")
    assert len(result.output.encode()) <= OUTPUT_LIMIT + len("…".encode())


def test_stderr_cut_inside_a_value_shows_no_part_of_it(script, credential: Credential) -> None:  # type: ignore[no-untyped-def]
    # 5000 copies back to back: the kept tail begins inside one, and the masker merges the rest into one label
    argv = script("sys.stderr.write(sys.stdin.read() * 5000)\nsys.exit(1)\n")
    result = run_rotate_hook(hook(argv), Secret(OLD), credential)
    assert "[aegis:stripe]" in result.output
    assert no_part_of(OLD, result.output)


def test_the_hook_sees_no_value_in_argv_or_environment_and_no_vault_key(
        script, credential: Credential, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kit) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AEGIS_VAULT_KEY", kit.ENV_KEY)
    monkeypatch.setenv("AEGIS_VAULT_HOME", str(tmp_path))
    monkeypatch.setenv("AEGIS_SESSION", "as_0123456789abcdef")
    cmdline, environ = tmp_path / "cmdline", tmp_path / "environ"
    argv = script(f"""
open({str(cmdline)!r}, "wb").write(open("/proc/self/cmdline", "rb").read())
open({str(environ)!r}, "wb").write(open("/proc/self/environ", "rb").read())
sys.stdin.read()
print({NEW!r})
""")
    result = run_rotate_hook(hook(argv), Secret(OLD), credential)
    assert result.ok, result.reason
    seen_argv, seen_env = cmdline.read_bytes(), environ.read_bytes()
    assert seen_env and seen_argv  # the canary did record
    for blob in (seen_argv, seen_env):
        assert OLD.encode() not in blob
        assert kit.ENV_KEY.encode() not in blob
    names = {entry.split(b"=", 1)[0] for entry in seen_env.split(b"\0") if entry}
    assert b"AEGIS_VAULT_KEY" not in names
    assert {name for name in names if name.startswith(b"AEGIS_")} == {
        b"AEGIS_CREDENTIAL", b"AEGIS_CONTEXT", b"AEGIS_SERVICE", b"AEGIS_VERSION"}
    assert b"PATH" in names  # the rest of the caller's environment is passed on


# -- revoke ---------------------------------------------------------------------------------------------
def test_a_revoke_hook_gets_the_old_value_on_stdin_and_its_stdout_is_ignored(
        script, credential: Credential, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    got = tmp_path / "revoked"
    revoke = script(f"open({str(got)!r}, 'w').write(sys.stdin.read())\nprint('revoked ok')\n", "revoke.py")
    result = run_revoke_hook(hook(("/bin/false",), revoke=revoke), Secret(OLD), credential)
    assert (result.ok, result.value) == (True, None)
    assert result.reason == "hook stripe revoked the old value"
    assert got.read_text() == OLD


def test_a_failing_revoke_hook_reports_its_status_with_the_value_masked(script, credential: Credential) -> None:  # type: ignore[no-untyped-def]
    revoke = script("sys.stderr.write('cannot revoke ' + sys.stdin.read() + '\\n')\nsys.exit(5)\n", "revoke.py")
    result = run_revoke_hook(hook(("/bin/false",), revoke=revoke), Secret(OLD), credential)
    assert (result.ok, result.value) == (False, None)
    assert result.reason == "hook stripe exited with status 5"
    assert result.output == "cannot revoke [aegis:stripe]\n"


def test_a_hook_without_a_revoke_command_has_nothing_to_revoke(credential: Credential) -> None:
    result = run_revoke_hook(hook(("/bin/false",)), Secret(OLD), credential)
    assert (result.ok, result.value, result.reason, result.output) == (True, None, "no revoke hook", "")
