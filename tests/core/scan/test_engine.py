"""The scan engine on real files, real git repositories and real streams. No mocks."""

from __future__ import annotations

import io
import random
import string
import subprocess
from pathlib import Path

import pytest

from aegis_tui.core.errors import UsageError
from aegis_tui.core.scan.engine import Scanner, Skipped
from aegis_tui.core.scan.findings import KNOWN, RULE, Finding
from aegis_tui.core.scan.known import KnownValues
from aegis_tui.core.scan.rules import default_rules

VAULT_VALUE = b"kv-Zx81-unique-vault-value-93"


def token(seed: int) -> str:
    """A GitHub PAT shape the default rules report."""
    return "ghp_" + "".join(random.Random(seed).choices(string.ascii_letters + string.digits, k=36))


@pytest.fixture(autouse=True)
def git_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every git here (the tests' and the scanner's) gets a throwaway HOME and no system config,
    and never finds a repository above the test folder."""
    home = tmp_path / "git-home"
    home.mkdir()
    for key, value in {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "GIT_CONFIG_NOSYSTEM": "1",
                       "GIT_CEILING_DIRECTORIES": str(tmp_path.parent), "GIT_TERMINAL_PROMPT": "0",
                       "GIT_AUTHOR_NAME": "Aegis Test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
                       "GIT_COMMITTER_NAME": "Aegis Test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}.items():
        monkeypatch.setenv(key, value)


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def new_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "--quiet", "--initial-branch=main")
    return path


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def scanner(known: KnownValues | None = None, **options: object) -> Scanner:
    return Scanner(default_rules(), known, workers=1, **options)  # type: ignore[arg-type]


def paths_of(findings: list[Finding]) -> list[str]:
    return [finding.path for finding in findings]


# --- folders and files -------------------------------------------------------------


def test_outside_git_gitignore_files_apply_at_every_depth_and_dot_git_is_never_read(tmp_path: Path) -> None:
    top = tmp_path / "tree"
    write(top / ".gitignore", "*.secret\n")
    write(top / "sub" / ".gitignore", "local.env\n!keep.secret\n")
    write(top / "found.txt", f"t = {token(1)}\n")
    write(top / "ignored.secret", f"t = {token(2)}\n")
    write(top / "sub" / "local.env", f"t = {token(3)}\n")
    write(top / "sub" / "keep.secret", f"t = {token(4)}\n")
    write(top / ".git" / "config", f"t = {token(5)}\n")

    findings = list(scanner().scan_paths([str(top)]))

    assert paths_of(findings) == [str(top / "found.txt"), str(top / "sub" / "keep.secret")]


def test_inside_git_the_work_tree_is_listed_by_git(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    write(repo / ".gitignore", "build/\n")
    write(repo / "app" / ".gitignore", "*.local\n")
    write(repo / "tracked.py", f"t = '{token(1)}'\n")
    commit(repo, "first")
    write(repo / "untracked.py", f"t = '{token(2)}'\n")
    write(repo / "build" / "out.txt", f"t = '{token(3)}'\n")
    write(repo / "app" / "settings.local", f"t = '{token(4)}'\n")
    write(repo / ".git" / "description", f"t = '{token(5)}'\n")

    findings = list(scanner().scan_paths([str(repo)]))

    assert paths_of(findings) == [str(repo / "tracked.py"), str(repo / "untracked.py")]


def test_a_file_named_explicitly_is_scanned_even_when_ignored(tmp_path: Path) -> None:
    write(tmp_path / ".gitignore", "*.env\n")
    file = write(tmp_path / "prod.env", f"t={token(1)}\n")
    assert paths_of(list(scanner().scan_paths([str(file)]))) == [str(file)]


def test_binary_and_oversized_files_are_skipped_and_reported(tmp_path: Path) -> None:
    write(tmp_path / "image.bin", b"\x89PNG\0\0" + token(1).encode())
    write(tmp_path / "huge.txt", "x" * 2000 + token(2))
    write(tmp_path / "small.txt", token(3))
    seen: list[Skipped] = []
    scan = scanner(max_file_size=1000, on_skip=seen.append)

    findings = list(scan.scan_paths([str(tmp_path)]))

    assert paths_of(findings) == [str(tmp_path / "small.txt")]
    expected = [Skipped(str(tmp_path / "huge.txt"), "too large"), Skipped(str(tmp_path / "image.bin"), "binary")]
    assert scan.skipped == seen == expected


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        list(scanner().scan_paths([str(tmp_path / "nope")]))


def test_a_known_value_is_reported_with_its_credential(tmp_path: Path) -> None:
    known = KnownValues({"deploy-key": [(3, VAULT_VALUE)]})
    file = write(tmp_path / "notes.md", b"line one\nkey: " + VAULT_VALUE + b"\n")

    [finding] = scanner(known).scan_paths([str(file)])

    assert (finding.detector, finding.credential, finding.version, finding.encoding) == (KNOWN, "deploy-key", 3, "raw")
    assert (finding.line, finding.column) == (2, 6)
    assert file.read_bytes()[finding.start:finding.end] == VAULT_VALUE


def test_rule_offsets_are_bytes_even_after_multibyte_and_invalid_utf8(tmp_path: Path) -> None:
    secret = token(7)
    data = "é ünïcode\n".encode() + b"bad \xff\xfe bytes " + f"TOKEN={secret}\n".encode()
    file = write(tmp_path / "mixed.txt", data)

    [finding] = scanner().scan_paths([str(file)])

    assert (finding.detector, finding.rule_id) == (RULE, "github-pat")
    assert data[finding.start:finding.end] == secret.encode()
    assert (finding.line, finding.column) == (2, 20)  # each invalid byte is one character


def test_a_known_value_matched_by_a_rule_too_is_reported_once_as_the_known_value(tmp_path: Path) -> None:
    secret = token(8)
    known = KnownValues({"github": [(1, secret.encode())]})
    file = write(tmp_path / ".env", f"GITHUB_TOKEN={secret}\nOTHER={token(9)}\n")

    findings = list(scanner(known).scan_paths([str(file)]))

    assert [(finding.rule_id, finding.credential, finding.line) for finding in findings] == [
        ("known-value", "github", 1), ("github-pat", None, 2)]


def test_parallel_and_serial_scans_give_identical_results(tmp_path: Path) -> None:
    known = KnownValues({"deploy-key": [(1, VAULT_VALUE)]})
    for number in range(200):
        lines = [f"line {line} of file {number}\n" for line in range(50)]
        if number % 3 == 0:
            lines[number % 50] = f"token = {token(number)}\n"
        if number % 7 == 0:
            lines[(number + 5) % 50] = f"key = {VAULT_VALUE.decode()}\n"
        write(tmp_path / f"dir{number % 10}" / f"file{number}.txt", "".join(lines))
    write(tmp_path / "blob.bin", b"\0" * 10)

    serial = Scanner(default_rules(), known, workers=1)
    parallel = Scanner(default_rules(), known, workers=2)
    serial_findings = list(serial.scan_paths([str(tmp_path)]))
    parallel_findings = list(parallel.scan_paths([str(tmp_path)]))

    assert len(serial_findings) == 67 + 29
    assert parallel_findings == serial_findings
    assert parallel.skipped == serial.skipped == [Skipped(str(tmp_path / "blob.bin"), "binary")]


# --- git index and history ---------------------------------------------------------


def test_staged_scans_the_staged_version_of_staged_files_only(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    write(repo / "clean.txt", "nothing here\n")
    write(repo / "cleaned.txt", "nothing here\n")
    write(repo / "docs" / "readme.md", "docs\n")
    commit(repo, "first")
    write(repo / "new.txt", f"one\nt = {token(1)}\n")
    write(repo / "cleaned.txt", f"t = {token(2)}\n")
    git(repo, "add", "new.txt", "cleaned.txt")
    write(repo / "cleaned.txt", "fixed in the work tree only\n")
    write(repo / "clean.txt", f"unstaged t = {token(3)}\n")

    findings = list(scanner().scan_staged(str(repo / "docs")))  # paths stay relative to the top

    assert [(finding.path, finding.line) for finding in findings] == [("cleaned.txt", 1), ("new.txt", 2)]


def test_staged_with_nothing_staged_finds_nothing(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    write(repo / "a.txt", f"unstaged t = {token(3)}\n")
    assert list(scanner().scan_staged(str(repo))) == []


def test_git_log_finds_a_secret_that_a_later_commit_removed(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    write(repo / "config.py", "a = 1\n")
    first = commit(repo, "first")
    write(repo / "config.py", f"a = 1\nt = '{token(1)}'\nb = 2\n")
    write(repo / "dir with space" / "ü.txt", b"key " + VAULT_VALUE + b"\n")
    write(repo / 'quo"te.txt', f"x\ny\nz = {token(2)}\n")
    leaked = commit(repo, "leak")
    write(repo / "config.py", "a = 1\nb = 2\n")
    (repo / "dir with space" / "ü.txt").unlink()
    commit(repo, "remove the leak")
    known = KnownValues({"deploy-key": [(1, VAULT_VALUE)]})

    findings = list(scanner(known).scan_git_log(str(repo)))

    assert [(finding.path, finding.line, finding.rule_id) for finding in findings] == [
        (f"{leaked[:12]}:config.py", 2, "github-pat"),
        (f"{leaked[:12]}:dir with space/ü.txt", 1, "known-value"),
        (f"{leaked[:12]}:quo\"te.txt", 3, "github-pat"),
    ]
    assert list(scanner(known).scan_git_log(str(repo), f"{leaked}..HEAD")) == []
    assert first != leaked


def test_git_commands_outside_a_repository_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="git"):
        list(scanner().scan_staged(str(tmp_path)))
    with pytest.raises(UsageError, match="git log failed"):
        list(scanner().scan_git_log(str(tmp_path)))


# --- streams -----------------------------------------------------------------------


def test_a_stream_finds_values_split_across_64k_chunks(tmp_path: Path) -> None:
    known = KnownValues({"deploy-key": [(1, VAULT_VALUE)]})
    secret = token(4).encode()
    padding = b"p" * (64 * 1024 - 10) + b"\n"
    data = padding[:-12] + b"\n" + VAULT_VALUE + b"\n" + padding + b"t = " + secret + b"\n"
    assert data.index(VAULT_VALUE) < 64 * 1024 < data.index(VAULT_VALUE) + len(VAULT_VALUE)

    findings = list(scanner(known).scan_stream(io.BytesIO(data), "-"))

    assert [(finding.rule_id, finding.line, finding.column, data[finding.start:finding.end]) for finding in findings] == [
        ("known-value", 2, 1, VAULT_VALUE), ("github-pat", 4, 5, secret)]


def test_a_long_stream_reports_each_finding_once_where_a_file_scan_does(tmp_path: Path) -> None:
    rng = random.Random(5)
    lines = []
    for number in range(60_000):
        if number % 997 == 0:
            lines.append(f"ü token {token(number)} end\n")
        else:
            lines.append("é" * rng.randrange(0, 40) + "\n")
    lines.append("x" * 1_500_000 + f" {token(1)}\n")  # one line longer than a window
    data = "".join(lines).encode()
    file = write(tmp_path / "big.log", data)

    def key(finding: Finding) -> tuple[str, int, int, int, int]:
        return finding.rule_id, finding.line, finding.column, finding.start, finding.end

    from_stream = [key(finding) for finding in scanner().scan_stream(io.BytesIO(data), "big.log")]
    from_file = [key(finding) for finding in scanner().scan_paths([str(file)])]
    assert len(from_file) == 62
    assert from_stream == from_file
