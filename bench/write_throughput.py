"""Write throughput: add and rotate through the core API, and `aegis-vault add` as processes.

Core API: one unlocked vault (environment slot); each `Credentials.add` /
`Credentials.rotate` is its own transaction, exactly as the CLI runs it: a sealed
metadata row, a sealed value row, a signed audit entry, one commit with
synchronous=FULL (an fsync of the write-ahead log) per operation. Rotations go
each credential just added once; adds and rotations alternate in blocks of 200. The
CPU time of the benchmark process is shown beside the wall time: the difference is
mostly waiting for fsync.

CLI: --cli-ops cold `aegis-vault add NAME` processes, value piped on stdin, run one
after another against the same vault (which by then holds the credentials above).

Usage: .venv/bin/python bench/write_throughput.py [--ops 2000] [--cli-ops 50] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import time

from common import (
    AEGIS,
    child_env,
    compile_package,
    create_vault,
    credential_name,
    median,
    ms,
    open_with_env,
    print_facts,
    run_child,
    temp_dir,
    write_json,
)

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.secret import Secret

BLOCK = 200


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--cli-ops", type=int, default=50)
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    print_facts()
    print(compile_package())

    with temp_dir() as tmp:
        vault, info = create_vault(os.path.join(tmp, "v"))
        credentials = Credentials(vault)
        values = [Secret(os.urandom(20).hex()) for _ in range(args.ops)]

        # Adds and rotations alternate in blocks of BLOCK so that a burst of disk
        # contention from other processes hits both series alike.
        add_s = rotate_s = add_cpu = rotate_cpu = 0.0
        for block in range(0, args.ops, BLOCK):
            names = [credential_name(i) for i in range(block, min(block + BLOCK, args.ops))]
            wall, cpu = time.perf_counter(), time.process_time()
            for name, value in zip(names, values[block:]):
                credentials.add(name, value, service="bench", context="prod")
            add_s += time.perf_counter() - wall
            add_cpu += time.process_time() - cpu
            wall, cpu = time.perf_counter(), time.process_time()
            for name, value in zip(names, reversed(values)):
                credentials.rotate(name, value)
            rotate_s += time.perf_counter() - wall
            rotate_cpu += time.process_time() - cpu
        vault.close()

        env = child_env(info)
        runs = []
        started = time.perf_counter()
        for i in range(args.cli_ops):
            runs.append(run_child([AEGIS, "add", credential_name(i, "cli"), "--service", "bench"],
                                  env=env, stdin=os.urandom(20).hex().encode()))
        cli_s = time.perf_counter() - started
        check = open_with_env(info)  # the processes really added what they said
        assert Credentials(check).find(credential_name(args.cli_ops - 1, "cli")).service == "bench"
        check.close()

    add_rate, rotate_rate, cli_rate = args.ops / add_s, args.ops / rotate_s, args.cli_ops / cli_s
    print()
    print("| operation | ops | total wall | ops/s | wall per op | CPU per op |")
    print("|---|---|---|---|---|---|")
    print(f"| core `Credentials.add` (own transaction each) | {args.ops:,} | {add_s:.2f} s | {add_rate:,.0f} | "
          f"{ms(add_s / args.ops)} | {ms(add_cpu / args.ops)} |")
    print(f"| core `Credentials.rotate` (own transaction each) | {args.ops:,} | {rotate_s:.2f} s | "
          f"{rotate_rate:,.0f} | {ms(rotate_s / args.ops)} | {ms(rotate_cpu / args.ops)} |")
    print(f"| `aegis-vault add NAME` cold process, value on stdin | {args.cli_ops} | {cli_s:.2f} s | "
          f"{cli_rate:,.1f} | {ms(cli_s / args.cli_ops)} (median {ms(median([r.seconds for r in runs]))}) | "
          f"{ms(median([r.cpu_seconds for r in runs]))} (median, child) |")
    write_json(args.json_file, {
        "add_ops_per_s": add_rate, "rotate_ops_per_s": rotate_rate, "cli_add_ops_per_s": cli_rate,
        "cli_add_median_s": median([r.seconds for r in runs]), "targets": {},
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
