"""`aegis-vault run` inside a sandboxed session, where the broker starts the command.

A headless broker (`aegis-vault serve`, environment-key slot) serves a throwaway vault
holding 1,000 credentials in the context `bench`, each under a standing inject grant
(so no pop-up). The agent is `aegis-vault session exec --context bench` (sandboxed: the
default with a usable bwrap) running this script again with `--inside`, which measures,
from inside the agent's sandbox:

1. Latency: `aegis-vault run -- true` beside `true` (in the same sandbox): ONE hyperfine
   run of both, then the same two in interleaved rounds (the verdict uses these
   medians). `run` sends `run.start` over the session's socket with its stdin, stdout
   and stderr; the broker hands it to its runner server, which forks a runner that
   starts `true` in a sibling bwrap sandbox; the run is audited; `run` exits as `true`
   did.
2. Throughput: `aegis-vault run --need` x 1,000 `-- cat FILE` with stdout on
   `/dev/null`, so every byte passes the runner's masker holding those 1,000 values
   (all their encodings), FILE being SIZE MiB of text with a value every 64 KiB. The
   same run of an empty file gives what the run costs besides the relay (the 1,000
   injects), subtracted; `cat FILE > /dev/null` in the same sandbox is the floor.
   Medians of --repeat runs.

Usage: .venv/bin/python bench/sandbox_run.py [--runs 30] [--warmup 3] [--rounds 30]
       [--size-mib 256] [--repeat 3] [--json FILE]
Targets: `run -- true` overhead <= 40 ms over `true` in the same sandbox (median);
masked relay with 1,000 values >= 300 MB/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

from broker import wait_for_socket
from common import (
    AEGIS,
    ROOT,
    child_env,
    compile_package,
    create_vault,
    hyperfine,
    hyperfine_table,
    interleaved,
    interleaved_table,
    median,
    print_facts,
    temp_dir,
    verdict,
    write_json,
)

OVERHEAD_TARGET_S = 0.040
THROUGHPUT_TARGET_MBS = 300.0
VALUES = 1000
CONTEXT = "bench"


def value_of(index: int) -> str:
    return f"bench-secret-{index:04d}-" + os.urandom(12).hex()


def setup_vault(home: str) -> tuple[object, list[str], list[str]]:
    """The vault, the credentials' names and their values."""
    from aegis_tui.core.agents.grants import INJECT, Grants
    from aegis_tui.core.credentials import Credentials
    from aegis_tui.core.secret import Secret

    vault, info = create_vault(home)
    names = [f"c{index:04d}" for index in range(VALUES)]
    values = [value_of(index) for index in range(VALUES)]
    credentials, grants = Credentials(vault), Grants(vault)
    with vault.store.transaction():
        for name, value in zip(names, values):
            credential = credentials.add(name, Secret(value), context=CONTEXT)
            grants.create(credential=credential, reason="benchmark: a standing grant", rights=(INJECT,))
    vault.close()
    return info, names, values


def write_output_file(path: str, size_mib: int, values: list[str]) -> None:
    """Text lines with one vault value every 64 KiB: the masker works, not just scans."""
    line = (b"0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ the quick brown fox\n")
    block = line * (65536 // len(line))
    with open(path, "wb") as handle:
        for index in range(size_mib * 16):
            handle.write(block[: 65536 - 100] + b" token=" + values[index % len(values)].encode() + b"\n")


def outside(args: argparse.Namespace) -> int:
    print_facts()
    print(compile_package())
    from aegis_tui.core.broker.runtime import socket_path
    from aegis_tui.core.sandbox.bwrap import find_bwrap

    if find_bwrap() is None:
        print("no usable bubblewrap here: nothing to measure (apt-get install bubblewrap)")
        return 1
    with temp_dir() as tmp:
        info, names, values = setup_vault(os.path.join(tmp, "aegis"))
        runtime = os.path.join(tmp, "runtime")
        os.mkdir(runtime, 0o700)
        project = os.path.join(tmp, "project")
        os.mkdir(project)
        write_output_file(os.path.join(project, "big.txt"), args.size_mib, values)
        open(os.path.join(project, "empty.txt"), "wb").close()
        with open(os.path.join(project, "names.json"), "w", encoding="utf-8") as handle:
            json.dump(names, handle)
        broker = subprocess.Popen([AEGIS, "serve"], env=child_env(info, XDG_RUNTIME_DIR=runtime),
                                  stderr=subprocess.DEVNULL)
        try:
            os.environ["XDG_RUNTIME_DIR"] = runtime
            wait_for_socket(socket_path(info.path))
            env = child_env(None, AEGIS_VAULT_HOME=info.home, XDG_RUNTIME_DIR=runtime,
                            PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
            env.pop("AEGIS_VAULT_KEY", None)
            inner = [sys.executable, os.path.abspath(__file__), "--inside", "--runs", str(args.runs),
                     "--warmup", str(args.warmup), "--rounds", str(args.rounds), "--repeat", str(args.repeat),
                     "--size-mib", str(args.size_mib)]
            argv = [AEGIS, "session", "exec", "--require-sandbox", "--context", CONTEXT, "--", *inner]
            print("command: " + shlex.join(argv) + "   (cwd: a project folder holding big.txt)")
            print("environment: AEGIS_VAULT_HOME=<tmp> XDG_RUNTIME_DIR=<tmp>, no AEGIS_VAULT_KEY")
            subprocess.run(argv, env=env, cwd=project, check=True)
            with open(os.path.join(project, "results.json"), encoding="utf-8") as handle:
                results = json.load(handle)
        finally:
            broker.terminate()
            broker.wait(timeout=30)
    overhead = results["latency"]["run"] - results["latency"]["true"]
    latency_ok = overhead <= OVERHEAD_TARGET_S
    mbs = results["throughput"]["masked_mb_s"]
    throughput_ok = mbs >= THROUGHPUT_TARGET_MBS
    print(f"target: run -- true overhead <= {OVERHEAD_TARGET_S * 1000:.0f} ms over true in the same sandbox: "
          f"{verdict(latency_ok)} ({overhead * 1000:.1f} ms: {results['latency']['run'] * 1000:.1f} ms vs "
          f"{results['latency']['true'] * 1000:.1f} ms, interleaved medians)")
    print(f"target: masked relay with {VALUES:,} values >= {THROUGHPUT_TARGET_MBS:.0f} MB/s: {verdict(throughput_ok)} "
          f"({mbs:,.0f} MB/s; cat in the same sandbox {results['throughput']['cat_mb_s']:,.0f} MB/s)")
    write_json(args.json_file, {**results, "run_overhead_s": overhead,
                                "targets": {"run -- true overhead <= 40 ms": latency_ok,
                                            "masked relay >= 300 MB/s": throughput_ok}})
    return 0


def inside(args: argparse.Namespace) -> int:
    """In the agent's sandbox (cwd: the project folder)."""
    env = dict(os.environ)
    check = subprocess.run([AEGIS, "run", "--", "true"], env=env, capture_output=True)
    assert check.returncode == 0, check.stderr.decode()[-500:]
    print(f"inside the sandbox: {len(os.listdir('/proc'))} entries in /proc; "
          f"vault folder visible: {os.path.exists(os.environ.get('AEGIS_VAULT_HOME', '/nonexistent'))}")
    commands = {"run": [AEGIS, "run", "--", "true"], "true": ["true"]}
    results = hyperfine({name: shlex.join(argv) for name, argv in commands.items()}, env, args.runs, args.warmup,
                        "hyperfine.json")
    hyperfine_table(results)
    print(f"interleaved: {args.rounds} rounds, each running both once, in a random order")
    mixed = interleaved(commands, env, args.rounds)
    interleaved_table(mixed)

    with open("names.json", encoding="utf-8") as handle:
        names = json.load(handle)
    needs = [arg for name in names for arg in ("--need", name)]
    size = os.path.getsize("big.txt")

    def timed_run(argv: list[str]) -> float:
        with open(os.devnull, "wb") as sink:
            started = time.perf_counter()
            done = subprocess.run(argv, env=env, stdout=sink, stderr=subprocess.PIPE)
            seconds = time.perf_counter() - started
        assert done.returncode == 0, done.stderr.decode()[-500:]
        return seconds

    masked = [timed_run([AEGIS, "run", *needs, "--", "cat", "big.txt"]) for _ in range(args.repeat)]
    setup = [timed_run([AEGIS, "run", *needs, "--", "cat", "empty.txt"]) for _ in range(args.repeat)]
    plain = [timed_run(["cat", "big.txt"]) for _ in range(args.repeat)]
    relay = max(median(masked) - median(setup), 1e-9)
    throughput = {"bytes": size, "masked_s": median(masked), "setup_s": median(setup), "cat_s": median(plain),
                  "masked_mb_s": size / relay / 1e6, "cat_mb_s": size / median(plain) / 1e6}
    print()
    print(f"| {size / 2**20:.0f} MiB with a value every 64 KiB, stdout on /dev/null (median of {args.repeat}) | "
          "seconds | MB/s |")
    print("|---|---|---|")
    print(f"| `aegis-vault run --need` x {len(names):,} `-- cat big.txt` | {median(masked):.3f} | |")
    print(f"| the same run of an empty file (its 1,000 injects; subtracted) | {median(setup):.3f} | |")
    print(f"| the relay through the masker | {relay:.3f} | {throughput['masked_mb_s']:,.0f} |")
    print(f"| `cat big.txt` in the same sandbox | {median(plain):.3f} | {throughput['cat_mb_s']:,.0f} |")
    print()
    with open("results.json", "w", encoding="utf-8") as handle:
        json.dump({"latency": {name: r["median"] for name, r in mixed.items()},
                   "hyperfine_medians_s": {name: r["median"] for name, r in results.items()},
                   "throughput": throughput}, handle)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds of the two commands")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    return inside(args) if args.inside else outside(args)


if __name__ == "__main__":
    raise SystemExit(main())
