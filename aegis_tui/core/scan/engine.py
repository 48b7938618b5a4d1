"""Run both detectors over files, folders, streams, the git index and git history.

The known-values detector searches raw bytes (it strips terminal escapes itself); the
rules search text. Text is decoded as UTF-8, and any byte that is not valid UTF-8
becomes one SUB character, so every character the rules see still stands for exactly
as many bytes as its UTF-8 form and their byte offsets stay right.

Where both detectors report the same bytes, the known-value finding wins: it names
the credential, which is what the person has to rotate.

Folders are listed the way git sees them: inside a work tree through ``git ls-files``
(so every ignore file git honours applies), elsewhere with the ``.gitignore`` files
found on the way when ``pathspec`` is importable. ``.git`` itself is never scanned.
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from aegis_tui.core.errors import UsageError
from aegis_tui.core.scan.findings import Finding
from aegis_tui.core.scan.known import KnownValues, advance_position
from aegis_tui.core.scan.rules import RuleSet

CHUNK = 64 * 1024
SNIFF = 8 * 1024  # a NUL byte in this much of a file makes it binary, as git decides
MAX_FILE_SIZE = 20 * 1024 * 1024
PARALLEL_FILES = 64  # below both of these, starting worker processes costs more than it saves
PARALLEL_BYTES = 8 * 1024 * 1024
STREAM_WINDOW = 1024 * 1024  # stream text the rules see at once ...
STREAM_OVERLAP = 64 * 1024  # ... of which this much is seen again with the next window
_SUB = "\x1a"
_INVALID = {0xDC80 + byte: _SUB for byte in range(128)}  # what surrogateescape made of bytes 0x80-0xFF
_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


class Skipped(NamedTuple):
    """A file not scanned, and why: "binary", "too large" or "unreadable (REASON)"."""

    path: str
    reason: str


class Scanner:
    """Both detectors, ready to scan. Files not scanned are listed in ``skipped`` (and
    passed to ``on_skip`` when given) so a caller can say how many and why."""

    def __init__(self, rules: RuleSet, known: KnownValues | None = None, *, workers: int | None = None,
                 max_file_size: int = MAX_FILE_SIZE, on_skip: Callable[[Skipped], None] | None = None) -> None:
        """``workers``: processes for large trees; None for one per CPU, 1 for none."""
        self.rules = rules
        self.known = None if known is None or known.empty else known
        self.workers = workers if workers is not None else _cpus()
        self.max_file_size = max_file_size
        self.on_skip = on_skip
        self.skipped: list[Skipped] = []

    # -- inputs ---------------------------------------------------------------------

    def scan_paths(self, paths: list[str]) -> Iterator[Finding]:
        """Findings in the given files and in the files of the given folders, ordered by
        path then offset. A file named explicitly is scanned even when ignored."""
        files = sorted({file for path in paths for file in _list_files(path)})
        if self.workers > 1 and (len(files) > PARALLEL_FILES or _total_size(files) > PARALLEL_BYTES):
            results = self._scan_parallel(files)
        else:
            results = map(self._scan_file, files)
        for findings, skipped in results:
            if skipped is not None:
                self._skip(skipped)
            yield from findings

    def scan_stream(self, stream: BinaryIO, name: str = "-") -> Iterator[Finding]:
        """Findings in a byte stream (stdin, a pipe), read in 64 KiB chunks. The input held
        in memory stays about a megabyte whatever its size; findings are collected until
        the end so they can be ordered and deduplicated."""
        windows = _RuleWindows(self.rules, name)
        chunks = iter(lambda: stream.read(CHUNK), b"")
        if self.known is not None:
            known = list(self.known.scan_stream(map(windows.feed, chunks), name))
        else:
            known = []
            for chunk in chunks:
                windows.feed(chunk)
        yield from _merge(known, windows.finish())

    def scan_staged(self, repo: str = ".") -> Iterator[Finding]:
        """Findings in the staged version of every added, copied, modified or renamed file
        (what the next commit would hold), with paths relative to the repository's top."""
        root = _git(repo, "rev-parse", "--show-toplevel").decode().rstrip("\n")
        listed = _git(root, "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR", "--no-renames")
        paths = sorted(name.decode("utf-8", "surrogateescape") for name in listed.split(b"\0") if name)
        for path, data in _staged_blobs(root, paths, self.max_file_size):
            if data is None:
                self._skip(Skipped(path, "too large"))
            elif b"\0" in data[:SNIFF]:
                self._skip(Skipped(path, "binary"))
            else:
                yield from self._scan_data(data, path)

    def scan_git_log(self, repo: str = ".", rev_range: str | None = None) -> Iterator[Finding]:
        """Findings in the lines every commit added, as ``COMMIT12:path`` with the line
        numbers of the file in that commit. A secret later removed is still reported: it
        stays in the history. Offsets count in the commit's added lines of that file."""
        for commit, path, lines in _added_lines(repo, rev_range):
            numbers = [number for number, _ in lines]
            data = b"".join(line + b"\n" for _, line in lines)
            for finding in self._scan_data(data, f"{commit[:12]}:{path}"):
                yield finding._replace(line=numbers[finding.line - 1])

    # -- scanning -------------------------------------------------------------------

    def _scan_data(self, data: bytes, path: str) -> list[Finding]:
        known = self.known.scan_bytes(data, path) if self.known is not None else []
        return _merge(known, self.rules.scan(decode(data), path))

    def _scan_file(self, path: str) -> tuple[list[Finding], Skipped | None]:
        try:
            with open(path, "rb") as file:
                if os.fstat(file.fileno()).st_size > self.max_file_size:
                    return [], Skipped(path, "too large")
                data = file.read()
        except OSError as err:
            return [], Skipped(path, f"unreadable ({err.strerror})")
        if b"\0" in data[:SNIFF]:
            return [], Skipped(path, "binary")
        return self._scan_data(data, path), None

    def _scan_parallel(self, files: list[str]) -> Iterator[tuple[list[Finding], Skipped | None]]:
        """Fork so the workers inherit the compiled matchers, the rules' hyperscan plan
        included (a hyperscan database does not pickle); results come back in the order
        of ``files``."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self.rules.prefilter is not None:
            self.rules.prefilter.compile_all()  # else every worker compiles its own
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(self.workers, mp_context=context, initializer=_adopt, initargs=(self,)) as pool:
            yield from pool.map(_scan_in_worker, files, chunksize=max(1, len(files) // (self.workers * 8)))

    def _skip(self, skipped: Skipped) -> None:
        self.skipped.append(skipped)
        if self.on_skip is not None:
            self.on_skip(skipped)


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_worker_scanner: Scanner | None = None


def _adopt(scanner: Scanner) -> None:
    global _worker_scanner
    _worker_scanner = scanner


def _scan_in_worker(path: str) -> tuple[list[Finding], Skipped | None]:
    assert _worker_scanner is not None, "the pool initializer sets the scanner"
    return _worker_scanner._scan_file(path)


def decode(data: bytes) -> str:
    """``data`` as text whose characters each encode back to as many UTF-8 bytes as they
    came from: invalid bytes become one SUB each (a character no token contains)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape").translate(_INVALID)


def _merge(known: list[Finding], rules: list[Finding]) -> list[Finding]:
    """Both detectors' findings by offset, without rule findings on bytes a known value covers."""
    spans = [(finding.start, finding.end) for finding in known]
    kept = [finding for finding in rules
            if not any(finding.start < end and start < finding.end for start, end in spans)]
    return sorted(known + kept, key=lambda finding: (finding.start, finding.end, finding.rule_id))


class _RuleWindows:
    """Runs the rules over a stream in overlapping windows of whole lines: each window is
    scanned once, and a finding is kept from the window where it starts before the part
    the next window sees again, so nothing is reported twice."""

    def __init__(self, rules: RuleSet, name: str) -> None:
        self.rules = rules
        self.name = name
        self.buffer = b""
        self.offset = 0  # stream offset of the buffer's first byte
        self.line = 0  # lines before the buffer
        self.column = 0  # characters between the last of those newlines and the buffer
        self.findings: list[Finding] = []

    def feed(self, chunk: bytes) -> bytes:
        self.buffer += chunk
        if len(self.buffer) >= STREAM_WINDOW:
            cut = self.buffer.rfind(b"\n") + 1
            if cut <= STREAM_WINDOW // 2:  # a very long last line: cut it, so each window moves far on
                cut = _char_boundary(self.buffer, len(self.buffer))
            keep = _char_boundary(self.buffer, max(0, cut - STREAM_OVERLAP))
            self._scan(self.buffer[:cut], keep)
        return chunk

    def finish(self) -> list[Finding]:
        self._scan(self.buffer, len(self.buffer))
        return self.findings

    def _scan(self, window: bytes, keep: int) -> None:
        """Report the findings of ``window`` that start before ``keep``, then drop the bytes before it."""
        for finding in self.rules.scan(decode(window), self.name):
            if finding.start >= keep or (finding.start == finding.end and self.offset):
                continue  # seen again by the next window; a path-only finding, once
            first_line = finding.line == 1
            self.findings.append(finding._replace(
                line=finding.line + self.line, column=finding.column + (self.column if first_line else 0),
                start=finding.start + self.offset, end=finding.end + self.offset))
        self.line, self.column = advance_position(self.line, self.column, self.buffer[:keep])
        self.buffer = self.buffer[keep:]
        self.offset += keep


def _char_boundary(data: bytes, index: int) -> int:
    """``index``, moved back to the start of the UTF-8 character it falls in."""
    while 0 < index < len(data) and 0x80 <= data[index] < 0xC0:
        index -= 1
    return index


# -- listing files ----------------------------------------------------------------------


def _list_files(path: str) -> Iterable[str]:
    if not os.path.isdir(path):
        if not os.path.exists(path):
            raise UsageError(f"no such file or folder: {path}")
        return [path]
    if _in_work_tree(path):
        listed = _git(path, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        names = (name.decode("utf-8", "surrogateescape") for name in listed.split(b"\0") if name)
        files = (os.path.join(path, name) for name in names if ".git" not in Path(name).parts)
        return [file for file in files if os.path.isfile(file) and not os.path.islink(file)]
    return _walk(path)


def _walk(top: str) -> Iterator[str]:
    """Files under ``top`` outside git, less those its ``.gitignore`` files exclude
    (each file's patterns relative to its folder; deeper files decide last, as in git)."""
    try:
        from pathspec import GitIgnoreSpec
    except ImportError:
        GitIgnoreSpec = None  # no ignore handling outside git
    specs: list[tuple[str, Any]] = []  # (folder, its spec), shallowest first
    for folder, dirs, files in os.walk(top):
        specs = [(base, spec) for base, spec in specs if _is_under(folder, base)]
        ignore_file = os.path.join(folder, ".gitignore")
        if GitIgnoreSpec is not None and os.path.isfile(ignore_file):
            with open(ignore_file, encoding="utf-8", errors="replace") as lines:
                specs.append((folder, GitIgnoreSpec.from_lines(lines)))
        dirs[:] = sorted(name for name in dirs if name != ".git"
                         and not _ignored(specs, os.path.join(folder, name), directory=True))
        for name in sorted(files):
            file = os.path.join(folder, name)
            if not os.path.islink(file) and not _ignored(specs, file, directory=False):
                yield file


def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _ignored(specs: list[tuple[str, Any]], path: str, *, directory: bool) -> bool:
    verdict = False
    for base, spec in specs:
        relative = os.path.relpath(path, base).replace(os.sep, "/") + ("/" if directory else "")
        include = spec.check_file(relative).include
        if include is not None:
            verdict = include
    return verdict


def _total_size(files: list[str]) -> int:
    total = 0
    for file in files:
        try:
            total += os.path.getsize(file)
        except OSError:
            continue
    return total


# -- git ----------------------------------------------------------------------------


def _git_command(cwd: str, *args: str) -> list[str]:
    return ["git", "-C", cwd, "-c", "core.quotePath=false", *args]


def _git(cwd: str, *args: str) -> bytes:
    result = subprocess.run(_git_command(cwd, *args), stdin=subprocess.DEVNULL, capture_output=True)
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(f"git {args[0]} failed in {cwd}: {message[0] if message else 'no message'}")
    return result.stdout


def _in_work_tree(path: str) -> bool:
    result = subprocess.run(_git_command(path, "rev-parse", "--is-inside-work-tree"),
                            stdin=subprocess.DEVNULL, capture_output=True)
    return result.returncode == 0 and result.stdout.strip() == b"true"


def _staged_blobs(root: str, paths: list[str], limit: int) -> Iterator[tuple[str, bytes | None]]:
    """The staged content of each path (None when over ``limit`` bytes), through one
    ``git cat-file --batch`` asked for one ``:PATH`` at a time."""
    if not paths:
        return
    process = subprocess.Popen(_git_command(root, "cat-file", "--batch"), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdin is not None and process.stdout is not None
    try:
        for path in paths:
            process.stdin.write(b":" + path.encode("utf-8", "surrogateescape") + b"\n")
            process.stdin.flush()
            header = process.stdout.readline().split()
            if len(header) != 3:
                continue  # "missing": the path left the index meanwhile
            size = int(header[2])
            data = _read_exactly(process.stdout, size)
            process.stdout.read(1)  # the newline after each object
            yield path, (data if size <= limit else None)
    finally:
        process.stdin.close()
        process.stdout.close()
        process.wait()


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    parts = []
    while size > 0:
        part = stream.read(min(size, CHUNK))
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _added_lines(repo: str, rev_range: str | None) -> Iterator[tuple[str, str, list[tuple[int, bytes]]]]:
    """(commit, path, [(new line number, line)]) for each file each commit added lines to."""
    args = ["log", "-p", "--no-color", "--unified=0", "--no-ext-diff", "--no-textconv",
            "--src-prefix=a/", "--dst-prefix=b/", "--format=commit %H"]
    if rev_range:
        args.append(rev_range)
    process = subprocess.Popen(_git_command(repo, *args), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    commit, path, number, lines = "", None, 0, []
    in_hunk = False
    for raw in process.stdout:
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if line.startswith((b"commit ", b"diff --git ")):  # with --unified=0 no hunk line starts so
            if path is not None and lines:
                yield commit, path, lines
            path, lines, in_hunk = None, [], False
            if line.startswith(b"commit "):
                commit = line[7:].decode()
        elif not in_hunk and line.startswith(b"+++ "):
            target = _unquote(line[4:])
            path = target[2:].decode("utf-8", "surrogateescape") if target.startswith(b"b/") else None
        elif hunk := _HUNK.match(line):
            number, in_hunk = int(hunk.group(1)), True
        elif in_hunk and line.startswith(b"+"):
            lines.append((number, line[1:]))
            number += 1
    if path is not None and lines:
        yield commit, path, lines
    error = process.stderr.read().decode("utf-8", "replace").strip()
    if process.wait() != 0:
        raise UsageError(f"git log failed in {repo}: {error.splitlines()[0] if error else 'no message'}")


def _unquote(name: bytes) -> bytes:
    """A path as git prints it on a ``+++`` line: C-quoted when it holds unusual characters,
    followed by a tab when it holds a space (for GNU patch)."""
    if name.endswith(b"\t"):
        name = name[:-1]
    if name.startswith(b'"') and name.endswith(b'"'):
        return codecs.escape_decode(name[1:-1])[0]
    return name
