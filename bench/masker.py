"""Output masking throughput: the `aegis-vault run` masker against `cat` on the same stream.

A file of --mb MiB of random printable text (lines of 64 characters on average) is
written to a private temp folder, with --planted occurrences of secret values in it:
raw, hex, URL-encoded, and inside base64 blobs. Each consumer below reads that file
from a pipe fed by `cat FILE`, as `aegis-vault run` reads a child's output, and writes
to /dev/null; wall time is the median of --runs, the consumers taking turns in each.

1. `cat FILE | cat > /dev/null`: the floor, what a C copy loop does.
2. A plain Python `os.read`/`os.write` loop of 64 KiB: the most a Python pump can do.
3. `MaskStream.feed` between the two, for each available match engine, with --values
   secret values of 20-60 random characters (every needle of each: about 6,600). The
   number of masked occurrences is checked against the number planted. The pure-Python
   engine is far too slow for the whole file; it reads only the first --python-mb MiB.

Throughput is in MB/s (10^6 bytes per second).

Usage: .venv/bin/python bench/masker.py [--mb 1024] [--values 1000] [--planted 300] [--runs 3] [--json FILE]
Target: the hyperscan masker >= 300 MB/s on 1 GiB with 1,000 values.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import random
import string
import subprocess
import time
from collections.abc import Callable
from urllib.parse import quote

from common import median, print_facts, ratio, temp_dir, verdict, write_json

from aegis_tui.core.redaction import Masker
from aegis_tui.core.redaction.engines import available_engines

TARGET_MBPS = 300.0
CHUNK = 64 * 1024
BLOCK = 64 * 2**20  # the file is written in blocks of this size
TOKEN_ALPHABET = (string.ascii_letters + string.digits + "-_").encode()
# random bytes to printable ASCII, with a newline for 4 of the 256 byte values
PRINTABLE = bytes(10 if byte % 64 == 0 else 32 + byte % 95 for byte in range(256))
FORMS: list[Callable[[bytes, random.Random], bytes]] = [
    lambda value, rng: value,
    lambda value, rng: binascii.hexlify(value),
    lambda value, rng: binascii.hexlify(value).upper(),
    lambda value, rng: quote(value, safe="").encode(),
    lambda value, rng: base64.b64encode(rng.randbytes(rng.randrange(12)) + value + rng.randbytes(5)),
    lambda value, rng: base64.urlsafe_b64encode(rng.randbytes(rng.randrange(12)) + value + rng.randbytes(5)),
]


def make_values(count: int, rng: random.Random) -> dict[str, list[bytes]]:
    return {f"cred-{index:04d}": [bytes(rng.choice(TOKEN_ALPHABET) for _ in range(rng.randint(20, 60)))]
            for index in range(count)}


def write_stream(path: str, size: int, values: list[bytes], planted: int, rng: random.Random) -> list[int]:
    """Write the test file; returns the end offset of every planted occurrence."""
    spots = sorted(rng.sample(range(size // 1024), planted))  # at most one per KiB: none touch
    ends: list[int] = []
    with open(path, "wb") as out:
        for block_start in range(0, size, BLOCK):
            block = bytearray(os.urandom(min(BLOCK, size - block_start)).translate(PRINTABLE))
            for spot in spots:
                at = spot * 1024 - block_start
                if 0 <= at < len(block):
                    text = rng.choice(FORMS)(rng.choice(values), rng)[:len(block) - at]
                    block[at:at + len(text)] = text
                    ends.append(block_start + at + len(text))
            out.write(block)
        out.flush()
        os.fsync(out.fileno())  # no write-back of the new file competing with the measurements
    return ends


def cat_through_cat(path: str) -> float:
    started = time.perf_counter()
    source = subprocess.Popen(["cat", path], stdout=subprocess.PIPE)
    sink = subprocess.Popen(["cat"], stdin=source.stdout, stdout=subprocess.DEVNULL)
    assert source.stdout is not None
    source.stdout.close()
    sink.wait()
    source.wait()
    return time.perf_counter() - started


def python_pump(path: str, limit: int, transform: Callable[[bytes], bytes] | None, finish: Callable[[], bytes] | None,
                ) -> float:
    """Read `cat FILE` (or its first ``limit`` bytes) from a pipe, transform, write to /dev/null."""
    source_argv = ["cat", path] if limit <= 0 else ["head", "-c", str(limit), path]
    devnull = os.open(os.devnull, os.O_WRONLY)
    started = time.perf_counter()
    source = subprocess.Popen(source_argv, stdout=subprocess.PIPE, bufsize=0)
    assert source.stdout is not None
    fd = source.stdout.fileno()
    try:
        while chunk := os.read(fd, CHUNK):
            os.write(devnull, transform(chunk) if transform is not None else chunk)
        if finish is not None:
            os.write(devnull, finish())
    finally:
        source.stdout.close()
        source.wait()
        os.close(devnull)
    return time.perf_counter() - started


def timed_compile(secrets: dict[str, list[bytes]], engine: str) -> tuple[Masker, float]:
    started = time.perf_counter()
    masker = Masker(secrets, engine=engine)
    return masker, time.perf_counter() - started


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024, help="size of the stream in MiB")
    parser.add_argument("--values", type=int, default=1000)
    parser.add_argument("--planted", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python-mb", type=int, default=16, help="MiB the pure-Python engine reads")
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    size = args.mb * 2**20
    print_facts()
    rng = random.Random(20260101)
    secrets = make_values(args.values, rng)

    results: dict[str, float] = {}
    with temp_dir() as tmp:
        path = os.path.join(tmp, "stream.txt")
        wall = time.perf_counter()
        ends = write_stream(path, size, [value for values in secrets.values() for value in values], args.planted, rng)
        print(f"stream: {args.mb:,} MiB of printable random text, {len(ends)} planted occurrences of "
              f"{args.values:,} values, written in {time.perf_counter() - wall:.1f} s", flush=True)

        # Consumers take turns, round after round, so that a burst of load elsewhere on
        # the machine is spread over all of them instead of skewing one.
        maskers = {engine: timed_compile(secrets, engine) for engine in available_engines()}
        python_limit = min(size, args.python_mb * 2**20)
        cat_through_cat(path)  # warm-up: the file is in the page cache from here on
        seconds: dict[str, list[float]] = {name: [] for name in ["cat", "copy", *maskers]}
        hits: dict[str, set[int]] = {engine: set() for engine in maskers}
        for round_ in range(args.runs):
            seconds["cat"].append(cat_through_cat(path))
            seconds["copy"].append(python_pump(path, 0, None, None))
            for engine, (masker, _) in maskers.items():
                if engine == "python" and round_:
                    continue  # one pass of a few MiB is plenty for the slow engine
                stream = masker.stream()
                limit = python_limit if engine == "python" else 0
                seconds[engine].append(python_pump(path, limit, stream.feed, stream.flush))
                hits[engine].add(sum(stream.hits.values()))

        results["cat_mbps"] = cat_rate = mbps(size, median(seconds["cat"]))
        print(f"cat FILE | cat > /dev/null: {cat_rate:,.0f} MB/s (median of {args.runs}: "
              f"{median(seconds['cat']):.2f} s)")
        results["python_copy_mbps"] = copy_rate = mbps(size, median(seconds["copy"]))
        print(f"Python os.read/os.write pipe copy, 64 KiB: {copy_rate:,.0f} MB/s "
              f"({ratio(copy_rate, cat_rate):.2f}x cat; median of {args.runs}: {median(seconds['copy']):.2f} s)")
        for engine, (masker, compile_s) in maskers.items():
            measured = python_limit if engine == "python" else size
            expected = sum(1 for end in ends if end <= measured)
            results[f"{engine}_mbps"] = rate = mbps(measured, median(seconds[engine]))
            scope = f"first {measured // 2**20:,} MiB, " if engine == "python" else ""
            print(f"MaskStream, {engine}: {rate:,.0f} MB/s ({ratio(rate, cat_rate):.2f}x cat, "
                  f"{ratio(rate, copy_rate):.2f}x the Python copy; {scope}median of {len(seconds[engine])}: "
                  f"{median(seconds[engine]):.2f} s; compiling {len(secrets):,} values took {compile_s:.2f} s; "
                  f"masked {min(hits[engine])} of {expected} planted: "
                  f"{'ok' if hits[engine] == {expected} else 'MISMATCH'})")
            if hits[engine] != {expected}:
                raise SystemExit(f"{engine}: masked {sorted(hits[engine])} occurrences, {expected} were planted")

    print()
    full = args.mb >= 1024 and args.values >= 1000
    hyperscan_rate = results.get("hyperscan_mbps")
    met = hyperscan_rate is not None and hyperscan_rate >= TARGET_MBPS
    if hyperscan_rate is None:
        print("target: the hyperscan masker >= 300 MB/s: not measured (hyperscan is not importable here)")
    elif full:
        print(f"target: the hyperscan masker >= {TARGET_MBPS:.0f} MB/s on 1 GiB, 1,000 values: {verdict(met)} "
              f"({hyperscan_rate:,.0f} MB/s)")
    else:
        print(f"the {TARGET_MBPS:.0f} MB/s target applies at 1 GiB and 1,000 values; this run: "
              f"{args.mb:,} MiB, {args.values:,} values, hyperscan {hyperscan_rate:,.0f} MB/s")
    write_json(args.json_file, {
        **results, "mib": args.mb, "values": args.values, "planted": len(ends),
        "targets": {"hyperscan masker >= 300 MB/s": met} if full and hyperscan_rate is not None else {},
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
