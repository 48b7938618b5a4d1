"""``aegis-vault run``: credentials into a child's environment, and never out of its output.

Children are ``sys.executable -c SCRIPT``. A child proves it received a value by
writing the value's sha256 to the file named in ``$PROOF`` (never the value itself);
what it prints is what an agent would read, and that must show ``[aegis:NAME]`` in
place of the value in every form that gives it away (checked with canaries that name
forms, never values). Every test has a private ``XDG_RUNTIME_DIR``; the broker tests
start a real ``aegis-vault serve`` and run ``run`` without the vault key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import signal
import string
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Broker, aegis, audit_entries, isolate, without_key
from tests.support.canary import forms_of, leaked_forms

PY = sys.executable
MASK = b"[aegis:tok]"


def _value() -> str:
    """A value whose every encoding differs from the raw text: URL-special characters, a
    quote and a backslash for JSON, a non-ASCII letter, and base64 forms that use + or /
    (so base64url really is another needle)."""
    alphabet = string.ascii_letters + string.digits + "~?!_.*ÿ"
    for _ in range(100_000):
        value = "tok-" + "".join(secrets.choice(alphabet) for _ in range(24)) + "/+=&é\"\\ ~" + secrets.token_hex(4)
        forms = forms_of(value.encode())
        if all(set(forms[f"base64@{k}"]) & set(b"+/") for k in range(3)):
            return value
    raise AssertionError("no test value with + or / in each base64 form")


VALUE = _value()
OTHER = "oth-" + secrets.token_hex(12)

PRINT_EVERY_FORM = textwrap.dedent(r"""
    import base64, binascii, hashlib, json, os, sys
    from urllib.parse import quote, quote_plus
    text = os.environ["TOK"]
    value = text.encode()
    with open(os.environ["PROOF"], "w") as proof:
        proof.write(hashlib.sha256(value).hexdigest())
    lines = [("raw", value), ("hex", binascii.hexlify(value)), ("HEX", binascii.hexlify(value).upper()),
             ("url", quote(value, safe="").encode()), ("url+", quote_plus(value, safe="").encode()),
             ("json", json.dumps(text).encode()), ("json-utf8", json.dumps(text, ensure_ascii=False).encode()),
             ("base64url", base64.urlsafe_b64encode(value))]
    for offset in range(3):  # the value inside a larger blob, at each of a 3-byte group's positions
        blob = os.urandom(offset) + value + os.urandom(5)
        lines.append((f"base64@{offset}", base64.b64encode(blob)))
        lines.append((f"base64url@{offset}", base64.urlsafe_b64encode(os.urandom(offset) + value + os.urandom(4))))
    out = sys.stdout.buffer
    for label, data in lines:
        out.write(label.encode() + b": " + data + b"\n")
    out.flush()
    for label, data in lines:
        sys.stderr.buffer.write(b"err " + label.encode() + b": " + data + b"\n")
    half = len(value) // 2
    out.write(b"split: " + value[:half])  # two writes, one buffer: the pipe sees them together
    out.write(value[half:] + b"\n")
    out.flush()
""")
FORM_LINES = 14  # the lines above, per stream

STREAM_SIZE = 10 * 1024 * 1024
STREAM = textwrap.dedent(r"""
    def stream(value, size):
        out, line = bytearray(), 0
        while len(out) < size:
            out += b"line %08d " % line + b"abcdefghijklmnopqrstuvwxyz0123456789" * 2 + b"\n"
            if line % 97 == 0:
                out += b"v=" + value + b";"
            if line % 389 == 0:
                out += value + value + b"\n"  # two in a row: one masked span
            line += 1
        return bytes(out)
""")
WRITE_STREAM = STREAM + textwrap.dedent(r"""
    import os, sys
    data = stream(os.environ["TOK"].encode(), int(sys.argv[1]))
    sizes, at, turn = (65536 - 3, 17, 131072 + 5, 1, 9001, 4096), 0, 0
    while at < len(data):  # uneven writes, so values straddle the pipe's read boundaries
        size = sizes[turn % len(sizes)]
        os.write(1, data[at:at + size])
        at, turn = at + size, turn + 1
""")


def ok(result):  # type: ignore[no-untyped-def]
    assert result.returncode == 0, (result.returncode, result.err)
    return result


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def owner(cli, request):  # type: ignore[no-untyped-def]
    """A vault only the key opens, a private runtime folder, ``tok`` and ``other`` in acme/dev."""
    isolate(cli.env, request.addfinalizer)
    cli.env["AEGIS_VAULT_KEY"] = "5f" * 32
    ok(cli("init", "--no-passphrase"))
    ok(cli("add", "tok", "--context", "acme/dev", input=VALUE))
    ok(cli("add", "other", "--context", "acme/dev", input=OTHER))
    return cli


@pytest.fixture
def proof(tmp_path: Path) -> Path:
    return tmp_path / "proof.txt"


def run(owner, *args: str, proof: Path | None = None, cwd: Path | None = None,  # type: ignore[no-untyped-def]
        env: dict[str, str] | None = None):
    merged = {**owner.env, **(env or {})}
    if proof is not None:
        merged["PROOF"] = str(proof)
    return aegis({k: v for k, v in merged.items() if v is not None}, "run", *args, cwd=cwd)


def run_entries(owner) -> list[dict]:  # type: ignore[no-untyped-def]
    return [e for e in audit_entries(owner.env) if e["operation"] == "run"]


def assert_every_form_masked(result) -> None:  # type: ignore[no-untyped-def]
    leaks = leaked_forms(result.stdout + result.stderr, VALUE)
    assert leaks == [], f"the value leaked as: {leaks}"
    out_lines = result.stdout.splitlines()
    err_lines = [line for line in result.stderr.splitlines() if line.startswith(b"err ")]
    assert len(out_lines) == FORM_LINES + 1 and len(err_lines) == FORM_LINES
    unmasked = [line.split(b":")[0].decode() for line in out_lines + err_lines if MASK not in line]
    assert unmasked == [], f"lines without the mask: {unmasked}"


# -- injection and masking ---------------------------------------------------------------------------
def test_the_child_gets_the_value_and_every_revealing_form_it_prints_is_masked(owner, proof):
    result = run(owner, "--need", "tok", "--", PY, "-c", PRINT_EVERY_FORM, proof=proof)
    assert result.returncode == 0, result.err
    assert proof.read_text() == sha(VALUE)
    assert_every_form_masked(result)
    assert result.stdout.startswith(b"raw: " + MASK + b"\n")
    assert result.stdout.endswith(b"split: " + MASK + b"\n")
    assert f"masked {2 * FORM_LINES + 1} occurrence(s)".encode() in result.stderr


def test_need_name_equals_env_picks_the_variable_and_a_full_reference_works(owner, proof):
    script = 'import os, hashlib; open(os.environ["PROOF"], "w").write(hashlib.sha256(os.environ["MY_TOKEN"].encode()).hexdigest()); print("TOK" in os.environ)'
    result = ok(run(owner, "--need", "aegis://acme/dev/tok=MY_TOKEN", "--", PY, "-c", script, proof=proof))
    assert proof.read_text() == sha(VALUE)
    assert result.stdout == b"False\n"


def test_a_long_stream_with_values_sprinkled_is_masked_completely_and_arrives_in_order(owner):
    namespace: dict[str, object] = {}
    exec(STREAM, namespace)  # the same generator the child runs
    data = namespace["stream"](VALUE.encode(), STREAM_SIZE)  # type: ignore[operator]
    # Values that touch are one masked span: one label, one hit.
    expected = re.sub(b"(?:" + re.escape(VALUE.encode()) + b")+", lambda _: MASK, data)
    result = run(owner, "--need", "tok", "--", PY, "-c", WRITE_STREAM, str(STREAM_SIZE))
    assert result.returncode == 0, result.err
    leaks = leaked_forms(result.stdout, VALUE)
    assert leaks == [], f"the value leaked as: {leaks}"
    identical = result.stdout == expected
    assert identical, f"output differs from the masked input ({len(result.stdout)} vs {len(expected)} bytes)"
    masked = expected.count(MASK)
    assert masked > 1000
    entry = run_entries(owner)[-1]
    # Two values in a row touch: they are one masked span, and one hit.
    assert entry["detail"]["masked"] == {"tok": masked}


def test_every_active_value_is_masked_not_only_the_injected_ones(owner):
    script = "import sys; print(sys.stdin.read())"
    result = aegis(owner.env, "run", "--", PY, "-c", script, input=OTHER.encode() + b" and " + VALUE.encode())
    assert result.returncode == 0, result.err
    leaks = leaked_forms(result.stdout + result.stderr, VALUE) + leaked_forms(result.stdout + result.stderr, OTHER)
    assert leaks == [], f"a value leaked as {leaks}"
    assert result.stdout == b"[aegis:other] and [aegis:tok]\n"


# -- exit codes and signals ---------------------------------------------------------------------------
@pytest.mark.parametrize("code", [0, 3, 42])
def test_the_childs_exit_code_passes_through(owner, code):
    result = run(owner, "--need", "tok", "--", PY, "-c", f"import sys; sys.exit({code})")
    assert result.returncode == code, result.err
    assert run_entries(owner)[-1]["detail"]["exit_code"] == code


def test_a_child_killed_by_sigterm_makes_run_die_of_sigterm_too(owner):
    script = "import os, signal, sys; print('bye', flush=True); os.kill(os.getpid(), signal.SIGTERM)"
    result = run(owner, "--need", "tok", "--", PY, "-c", script)
    assert result.returncode == -signal.SIGTERM, result.err
    assert result.stdout == b"bye\n"
    detail = run_entries(owner)[-1]["detail"]
    assert (detail["exit_code"], detail["signal"]) == (None, signal.SIGTERM)


def test_a_missing_command_is_one_line_and_no_run_entry(owner, expect_error):
    result = run(owner, "--need", "tok", "--", "/nonexistent/program-xyz")
    expect_error(result, 2, mentions=("command not found",))
    assert run_entries(owner) == []


def test_run_without_a_command_is_a_usage_error(owner, expect_error):
    expect_error(run(owner, "--need", "tok"), 2, mentions=("after --",))


# -- where references come from -------------------------------------------------------------------------
def test_an_env_file_resolves_references_and_passes_plain_lines_through(owner, proof, tmp_path: Path):
    env_file = tmp_path / "app.env"
    env_file.write_text("# the app's settings\nPLAIN=hello world\nAPI_TOKEN=aegis://acme/dev/tok\n\nMODE=dev\n")
    script = ('import os, hashlib; open(os.environ["PROOF"], "w").write(hashlib.sha256(os.environ["API_TOKEN"]'
              '.encode()).hexdigest()); print(os.environ["PLAIN"], os.environ["MODE"], sep="|")')
    result = ok(run(owner, "--env-file", str(env_file), "--", PY, "-c", script, proof=proof))
    assert proof.read_text() == sha(VALUE)
    assert result.stdout == b"hello world|dev\n"
    assert run_entries(owner)[-1]["detail"]["credentials"] == ["tok"]


def test_references_in_the_environment_are_resolved(owner, proof):
    script = 'import os, hashlib; open(os.environ["PROOF"], "w").write(hashlib.sha256(os.environ["GITHUB"].encode()).hexdigest())'
    ok(run(owner, "--", PY, "-c", script, proof=proof, env={"GITHUB": "aegis://acme/dev/tok"}))
    assert proof.read_text() == sha(VALUE)


def _project(folder: Path, context: str, env: dict[str, str]) -> None:
    lines = [f'context = "{context}"', "", "[env]"] + [f'{key} = "{value}"' for key, value in env.items()]
    (folder / ".aegis.toml").write_text("\n".join(lines) + "\n")


PROVE_TOKEN = ('import os, hashlib; open(os.environ["PROOF"], "w").write(hashlib.sha256(os.environ["TOKEN"]'
               '.encode()).hexdigest())')


def test_the_project_file_in_the_working_folder_is_used_with_its_context(owner, proof, tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    _project(project, "acme/dev", {"TOKEN": "tok"})
    ok(run(owner, "--", PY, "-c", PROVE_TOKEN, proof=proof, cwd=project))
    assert proof.read_text() == sha(VALUE)


def test_the_project_file_in_a_parent_folder_is_used(owner, proof, tmp_path: Path):
    project = tmp_path / "project"
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    _project(project, "acme/dev", {"TOKEN": "tok"})
    ok(run(owner, "--", PY, "-c", PROVE_TOKEN, proof=proof, cwd=deep))
    assert proof.read_text() == sha(VALUE)


def test_the_project_files_context_is_where_its_names_are_looked_up(owner, proof, tmp_path: Path, expect_error):
    project = tmp_path / "project"
    project.mkdir()
    _project(project, "acme/prod", {"TOKEN": "tok"})  # tok lives in acme/dev, not here
    expect_error(run(owner, "--", PY, "-c", PROVE_TOKEN, proof=proof, cwd=project), 4,
                 mentions=("TOKEN", "aegis://acme/prod/tok"))
    assert not proof.exists()
    _project(project, "acme/dev", {"TOKEN": "tok"})
    ok(run(owner, "--", PY, "-c", PROVE_TOKEN, proof=proof, cwd=project))
    assert proof.read_text() == sha(VALUE)


def test_need_overrides_the_project_file_for_the_same_variable(owner, proof, tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    _project(project, "acme/dev", {"TOKEN": "no-such-credential"})
    ok(run(owner, "--need", "tok=TOKEN", "--", PY, "-c", PROVE_TOKEN, proof=proof, cwd=project))
    assert proof.read_text() == sha(VALUE)


@pytest.mark.parametrize("source", ["need", "env-file", "environment", "project"])
def test_an_unknown_reference_exits_4_naming_the_variable_and_where_it_came_from(owner, tmp_path: Path,
                                                                                 expect_error, source):
    folder = tmp_path / "here"
    folder.mkdir()
    args: list[str] = []
    env: dict[str, str] = {}
    if source == "need":
        args, where = ["--need", "nosuch=MISSING_VAR"], "--need"
    elif source == "env-file":
        (folder / "x.env").write_text("OK=1\nMISSING_VAR=aegis://acme/dev/nosuch\n")
        args, where = ["--env-file", str(folder / "x.env")], f"{folder / 'x.env'}:2"
    elif source == "environment":
        env, where = {"MISSING_VAR": "aegis://acme/dev/nosuch"}, "the environment"
    else:
        _project(folder, "acme/dev", {"MISSING_VAR": "nosuch"})
        where = str(folder / ".aegis.toml")
    result = run(owner, *args, "--", PY, "-c", "open('ran', 'w')", cwd=folder, env=env)
    expect_error(result, 4, mentions=("MISSING_VAR", f"(from {where})", "nosuch"))
    assert not (folder / "ran").exists()
    assert run_entries(owner) == []


# -- what the child can and cannot see -----------------------------------------------------------------
def test_the_vault_key_is_not_in_the_childs_environment(owner):
    script = "import os; print(sorted(k for k in os.environ if k.startswith('AEGIS')))"
    result = ok(run(owner, "--need", "tok", "--", PY, "-c", script, env={"AEGIS_SESSION": None}))  # type: ignore[dict-item]
    assert result.stdout == b"['AEGIS_VAULT_HOME', 'AEGIS_VAULT_INSECURE_FAST_KDF']\n"


def test_the_audit_log_gets_a_run_entry_with_argv0_only_the_credentials_and_the_masked_count(owner):
    canary = "ARGV-CANARY-" + secrets.token_hex(8)
    script = "import os, sys; print(os.environ['TOK']); print(os.environ['TOK'], file=sys.stderr)"
    result = ok(run(owner, "--need", "tok", "--need", "other", "--", PY, "-c", script, canary))
    leaks = leaked_forms(result.stdout + result.stderr, VALUE)
    assert leaks == [], f"the value leaked as {leaks}"
    assert result.stdout == MASK + b"\n"
    export = ok(owner("audit", "export", "--jsonl")).out
    leaked = canary in export or "ARGV-CANARY" in export
    assert not leaked, "the child's argv reached the audit log"
    entries = [e for e in (json.loads(line) for line in export.splitlines()) if e["operation"] == "run"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["target"] == os.path.basename(PY)
    assert sorted(entry["detail"]["credentials"]) == ["other", "tok"]
    assert entry["detail"]["masked"] == {"tok": 2}
    assert entry["detail"]["exit_code"] == 0 and entry["risk_level"] == "medium"
    reads = [e for e in (json.loads(line) for line in export.splitlines()) if e["operation"] == "read"]
    assert {e["target"] for e in reads} == {"tok", "other"}
    leaks = leaked_forms(export.encode(), VALUE) + leaked_forms(export.encode(), OTHER)
    assert leaks == [], f"a value reached the audit log as {leaks}"


# -- through a broker ----------------------------------------------------------------------------------
@pytest.fixture
def broker(owner, tmp_path: Path) -> Iterator[Broker]:
    with Broker(owner.env, tmp_path / "serve.log") as running:
        yield running


def test_through_a_broker_with_a_standing_grant_the_child_gets_the_value_and_output_is_masked(
        owner, broker, proof):
    grant_id = ok(owner("grants", "add", "tok")).out.strip()
    agent_env = {**without_key(owner.env), "PROOF": str(proof)}
    result = aegis(agent_env, "run", "--need", "tok", "--", PY, "-c", PRINT_EVERY_FORM)
    assert result.returncode == 0, result.err
    assert proof.read_text() == sha(VALUE)
    assert_every_form_masked(result)
    entries = audit_entries(owner.env)
    reads = [e for e in entries if e["operation"] == "read" and e["target"] == "tok"]
    assert len(reads) == 1 and reads[0]["detail"]["grant"] == grant_id
    runs = [e for e in entries if e["operation"] == "run"]
    assert len(runs) == 1
    assert runs[0]["detail"]["credentials"] == ["tok"]
    assert runs[0]["detail"]["masked"] == {"tok": 2 * FORM_LINES + 1}


def test_through_a_broker_without_a_grant_run_is_denied_and_the_command_never_starts(owner, broker, tmp_path,
                                                                                     expect_error):
    marker = tmp_path / "ran"
    result = aegis(without_key(owner.env), "run", "--need", "tok", "--", PY, "-c", f"open({str(marker)!r}, 'w')")
    expect_error(result, 9, mentions=("TOK (from --need)", "no one approved"))
    assert not marker.exists()


def test_through_a_broker_the_childs_argv_stays_out_of_the_audit_log(owner, broker):
    ok(owner("grants", "add", "tok"))
    canary = "ARGV-CANARY-" + secrets.token_hex(8)
    result = aegis(without_key(owner.env), "run", "--need", "tok", "--", PY, "-c", "pass", canary)
    assert result.returncode == 0, result.err
    export = ok(owner("audit", "export", "--jsonl")).out
    leaked = canary in export or "ARGV-CANARY" in export
    assert not leaked, "the child's argv reached the audit log"
