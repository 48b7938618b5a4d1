"""Run every aegis-vault benchmark and print one Markdown section per benchmark.

Each benchmark runs as its own process (exactly the command shown in its section), one
after another, never in parallel: they would disturb each other. At the end, a table
of every target and whether this run met it.

Usage: .venv/bin/python bench/run_all.py [--quick] [--only NAME[,NAME...]] [--output FILE]

--quick runs reduced sizes (a smoke test of the suite; targets are then not checked
at their real scale). The machine this runs on may be shared and noisy: compare the
ratios within one run rather than absolute figures across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from common import BENCH_DIR, ROOT, machine_facts

BENCHMARKS: list[tuple[str, str, list[str], list[str]]] = [
    # name, title, full-size arguments, --quick arguments
    ("unlock", "Unlock time", [], ["--runs", "3", "--fast-runs", "10"]),
    ("get_cold", "Cold `aegis-vault get` vs `pass show` vs `python -c pass`", [],
     ["--runs", "10", "--warmup", "2"]),
    ("list_scale", "`aegis-vault list` at 10k and 100k credentials", [], ["--sizes", "1000,5000", "--runs", "2"]),
    ("write_throughput", "Write throughput (add, rotate)", [], ["--ops", "200", "--cli-ops", "5"]),
    ("audit_scale", "Audit append rate and `audit verify` at 1M entries", [],
     ["--appends", "2000", "--entries", "20000", "--batch", "5000", "--runs", "1"]),
    ("tui_scale", "The app at 1k, 10k and 100k credentials: first paint, filter latency, memory", [],
     ["--sizes", "1000,5000", "--runs", "1"]),
    ("review", "The access review at 10k credentials, 50k grants and 1M audit entries", [], ["--quick"]),
    ("broker", "The broker: `get` through it vs `pass show`, `run -- true` vs `true`, provenance per request, "
     "requests/s", [], ["--runs", "10", "--warmup", "2", "--rounds", "10", "--calls", "200", "--seconds", "2"]),
    ("masker", "Output masking throughput (`aegis-vault run`'s masker) vs `cat` on 1 GiB", [],
     ["--mb", "100", "--python-mb", "4"]),
    ("scan_corpus", "Leak scanner accuracy and speed on a labelled 50 MB corpus, beside detect-secrets, "
     "betterleaks and kingfisher", [], ["--quick"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes: a smoke test of the suite")
    parser.add_argument("--only", help="comma-separated benchmark names: " + ", ".join(b[0] for b in BENCHMARKS))
    parser.add_argument("--output", help="also write the Markdown report to this file")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else {b[0] for b in BENCHMARKS}
    unknown = wanted - {b[0] for b in BENCHMARKS}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    lines: list[str] = []

    def out(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    facts = machine_facts()
    out("# aegis-vault benchmark run" + (" (--quick: reduced sizes)" if args.quick else ""))
    out()
    out(", ".join(f"**{key}** {value}" for key, value in facts.items()))
    out()
    out("The machine may be shared with other work: absolute figures move from run to run; "
        "ratios measured within one run (same minute, same load) are the comparable ones.")
    targets: list[tuple[str, str, bool]] = []
    failed: list[str] = []
    for name, title, full, quick in BENCHMARKS:
        if name not in wanted:
            continue
        extra = quick if args.quick else full
        script = os.path.join("bench", f"{name}.py")
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            json_file = handle.name
        command = [os.path.join(".venv", "bin", "python"), script, *extra]
        out()
        out(f"## {title}")
        out()
        out(f"Command (from the repository root): `{' '.join(command)}`")
        out()
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, os.path.join(BENCH_DIR, f"{name}.py"), *extra, "--json", json_file],
                              cwd=ROOT, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        out("```text")
        out(proc.stdout.rstrip())
        if proc.returncode != 0:
            out(proc.stderr.rstrip()[-4000:])
        out("```")
        out()
        out(f"_{name} took {elapsed:.0f} s, exit status {proc.returncode}._")
        if proc.returncode != 0:
            failed.append(name)
        try:
            with open(json_file, encoding="utf-8") as data:
                for target, met in json.load(data).get("targets", {}).items():
                    targets.append((name, target, bool(met)))
        except (OSError, ValueError):
            pass
        finally:
            os.unlink(json_file)

    out()
    out("## Targets")
    out()
    if targets:
        out("| benchmark | target | result |")
        out("|---|---|---|")
        for name, target, met in targets:
            out(f"| {name} | {target} | {'met' if met else '**missed**'} |")
    else:
        out("No targets were checked in this run.")
    if failed:
        out()
        out(f"Benchmarks that failed to run: {', '.join(failed)}")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as report:
            report.write("\n".join(lines) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
