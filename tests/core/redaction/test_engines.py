"""The match engines: every occurrence of every needle, across chunk boundaries, on each engine."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from aegis_tui.core.redaction.engines import ENGINE_ENV, ENGINES, available_engines, compile_matcher

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    if request.param not in available_engines():
        pytest.skip(f"the {request.param} engine cannot be imported here")
    return request.param


def naive(needles: Sequence[bytes], text: bytes) -> list[tuple[int, int]]:
    """Every (needle index, end offset), overlapping ones included, sorted."""
    found = []
    for index, needle in enumerate(needles):
        at = text.find(needle)
        while at >= 0:
            found.append((index, at + len(needle)))
            at = text.find(needle, at + 1)
    return sorted(found)


def scan_in_chunks(needles: Sequence[bytes], text: bytes, cuts: Sequence[int], engine: str) -> list[tuple[int, int]]:
    stream = compile_matcher(needles, engine).stream()
    bounds = [0, *cuts, len(text)]
    found = []
    for start, end in zip(bounds, bounds[1:]):
        found.extend(stream.scan(text[start:end]))
    return sorted(found)


NEEDLES = [b"abcabc", b"bcabca", b"cabcab", b"abcabcabc", b"zzz-token-zzz"]
TEXT = b"..abcabcabcabc..zzz-token-zzz-token-zzz..abcabc"


def test_every_occurrence_is_found_including_overlapping_ones(engine: str) -> None:
    expected = naive(NEEDLES, TEXT)
    assert len(expected) > len(NEEDLES)  # the text really has overlaps
    assert scan_in_chunks(NEEDLES, TEXT, [], engine) == expected


def test_a_needle_straddling_any_chunk_boundary_is_found_once(engine: str) -> None:
    expected = naive(NEEDLES, TEXT)
    for cut in range(1, len(TEXT)):
        assert scan_in_chunks(NEEDLES, TEXT, [cut], engine) == expected, cut


def test_one_byte_chunks_find_everything_with_absolute_end_offsets(engine: str) -> None:
    assert scan_in_chunks(NEEDLES, TEXT, range(1, len(TEXT)), engine) == naive(NEEDLES, TEXT)


def test_needles_with_every_byte_value_including_nul_are_found(engine: str) -> None:
    needles = [bytes(range(256)), b"nul\x00inside", b"\\x00.*[(?"]
    text = b"\x00" + bytes(range(256)) + b"..nul\x00inside..\\x00.*[(?.." + b"nul\x00outside"
    assert scan_in_chunks(needles, text, [100, 270], engine) == naive(needles, text)


def test_a_needle_too_long_for_hyperscan_is_found_beside_short_ones(engine: str) -> None:
    long_needle = bytes(range(256)) * 80  # 20,480 bytes: over hyperscan's pattern limit
    needles = [b"short-needle", long_needle]
    text = b"x" + long_needle + b"short-needle" + long_needle[:-1]
    assert scan_in_chunks(needles, text, [5000, 20000, 20490], engine) == [(0, 20493), (1, 20481)]


def test_streams_from_one_matcher_are_independent(engine: str) -> None:
    matcher = compile_matcher([b"secret-one"], engine)
    first, second = matcher.stream(), matcher.stream()
    assert first.scan(b"xx secret") == [] and second.scan(b"secr") == []
    assert second.scan(b"et-one") == [(0, 10)]
    assert first.scan(b"-one") == [(0, 13)]


def test_streams_scan_in_parallel_threads(engine: str) -> None:
    matcher = compile_matcher([b"parallel-needle"], engine)
    chunk = b"." * 1000 + b"parallel-needle" + b"." * 1000
    counts: list[int] = []

    def pump() -> None:
        stream = matcher.stream()
        counts.append(sum(len(stream.scan(chunk)) for _ in range(200)))

    threads = [threading.Thread(target=pump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts == [200] * 4


def test_no_needles_match_nothing(engine: str) -> None:
    assert compile_matcher([], engine).stream().scan(b"anything at all") == []


def test_the_environment_variable_forces_the_engine(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_ENV, engine)
    assert compile_matcher([b"abcdef"]).name == engine


def test_an_unknown_engine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_ENV, "grep")
    with pytest.raises(ValueError, match="grep"):
        compile_matcher([b"abcdef"])


def test_without_a_choice_the_fastest_available_engine_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert compile_matcher([b"abcdef"]).name == available_engines()[0]


CALLBACK_LIFETIME = """
import gc
from aegis_tui.core.redaction.engines import compile_matcher

matcher = compile_matcher([b"needle-%03d" % i for i in range(64)], "hyperscan")
total = 0
for round in range(30):
    stream = matcher.stream()
    for i in range(64):
        gc.collect()
        junk = [object() for _ in range(500)]  # reuse any freed memory
        total += len(stream.scan(b"..needle-%03d..needle-" % i))
        del junk
    del stream
print(total)
"""


def test_hyperscan_streams_survive_garbage_collection_between_chunks() -> None:
    # hyperscan 0.9.1 keeps a borrowed pointer to the match callback: if the engine let
    # the callback be freed, the scans below would crash the interpreter or stop short.
    if "hyperscan" not in available_engines():
        pytest.skip("hyperscan cannot be imported here")
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", CALLBACK_LIFETIME], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(30 * 64)
