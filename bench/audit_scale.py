"""Audit log at scale: append rate, and `audit verify` over 1,000,000 entries.

1. Append rate: --appends calls of `AuditLog.append` on an unlocked vault, each its own
   transaction as in real use (hash-chained, subject sealed, chain head signed with
   Ed25519, one commit with synchronous=FULL per entry).
2. Build a log of --entries entries fast: still the real `AuditLog.append` for every
   entry, but --batch appends share one `vault.store.transaction()` (one commit per
   batch). The entries are the same as in real use; only the commits are fewer.
3. `vault.audit.verify()` in-process (the chain and the signed head) and
   `aegis-vault audit verify` as a cold process (median of --runs), plus the vault
   file size.

Usage: .venv/bin/python bench/audit_scale.py [--appends 20000] [--entries 1000000] [--json FILE]
Targets: append rate >= 2,000 entries/s; verify of 1M entries <= 10 s.
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
    median,
    mib,
    print_facts,
    run_child,
    temp_dir,
    verdict,
    write_json,
)

from aegis_tui.core.audit import Risk

APPEND_TARGET = 2000.0
VERIFY_TARGET_S = 10.0


def append_one(vault, i: int) -> None:  # type: ignore[no-untyped-def]
    """A typical entry: a credential read, naming its target and context (sealed)."""
    vault.audit.append("read", vault.actor, risk=Risk.MEDIUM, target=f"cred-{i % 5000:07d}",
                       context="prod/api", detail={"version": 1, "state": "current", "via": "get"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    print_facts()
    print(compile_package())

    with temp_dir() as tmp:
        vault, info = create_vault(os.path.join(tmp, "v"))
        start_seq = vault.audit.verify().entries

        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(args.appends):
            append_one(vault, i)
        append_s, append_cpu = time.perf_counter() - wall, time.process_time() - cpu
        append_rate = args.appends / append_s
        print(f"append, one transaction each: {args.appends:,} entries in {append_s:.2f} s = "
              f"{append_rate:,.0f} entries/s (CPU {append_cpu / args.appends * 1e6:.0f} µs/entry, "
              f"wall {append_s / args.appends * 1e6:.0f} µs/entry)", flush=True)

        have = start_seq + args.appends
        wall = time.perf_counter()
        i = have
        while i < args.entries:
            with vault.store.transaction():
                for _ in range(min(args.batch, args.entries - i)):
                    append_one(vault, i)
                    i += 1
        build_s = time.perf_counter() - wall
        built = max(args.entries - have, 0)
        if built:
            print(f"build: {built:,} more entries via AuditLog.append in transactions of {args.batch:,}: "
                  f"{build_s:.1f} s ({built / build_s:,.0f} entries/s)", flush=True)
        vault.store.compact_deleted()  # checkpoint the WAL so the file size is the whole log
        vault.close()
        file_bytes = os.path.getsize(info.path)
        wal = info.path + "-wal"
        wal_bytes = os.path.getsize(wal) if os.path.exists(wal) else 0

        from aegis_tui.core.vault import Vault

        reader = Vault.open(info.path)  # verify needs no unlock: public key only
        wall, cpu = time.perf_counter(), time.process_time()
        report = reader.audit.verify()
        verify_s, verify_cpu = time.perf_counter() - wall, time.process_time() - cpu
        reader.close()
        assert report.ok, report.problems
        entries = report.entries
        print(f"in-process vault.audit.verify(): {entries:,} entries in {verify_s:.2f} s "
              f"(CPU {verify_cpu:.2f} s; {entries / verify_s:,.0f} entries/s)", flush=True)

        runs = [run_child([AEGIS, "audit", "verify"], env=child_env(info)) for _ in range(args.runs)]
        cli_s = median([run.seconds for run in runs])
        print(f"`aegis-vault audit verify` process, median of {args.runs}: {cli_s:.2f} s "
              f"(runs {', '.join(f'{run.seconds:.2f}' for run in runs)}; CPU median "
              f"{median([run.cpu_seconds for run in runs]):.2f} s; peak RSS "
              f"{mib(max(run.maxrss_kib for run in runs))})")
        print(f"vault file at {entries:,} audit entries: {file_bytes / 2**20:.1f} MiB "
              f"({file_bytes / max(entries, 1):.0f} bytes/entry; WAL after checkpoint {wal_bytes} bytes)")

    append_ok = append_rate >= APPEND_TARGET
    verify_ok = entries >= 1_000_000 and max(verify_s, cli_s) <= VERIFY_TARGET_S
    print()
    print(f"target: append >= {APPEND_TARGET:,.0f} entries/s: {verdict(append_ok)} ({append_rate:,.0f}/s)")
    if entries >= 1_000_000:
        print(f"target: audit verify of 1M entries <= {VERIFY_TARGET_S:.0f} s: {verdict(verify_ok)} "
              f"(in-process {verify_s:.2f} s, CLI {cli_s:.2f} s)")
    else:
        print(f"verify target applies at 1,000,000 entries; this run has {entries:,}")
    write_json(args.json_file, {
        "append_per_s": append_rate, "append_cpu_us": append_cpu / args.appends * 1e6,
        "entries": entries, "verify_inprocess_s": verify_s, "verify_cli_median_s": cli_s,
        "file_bytes": file_bytes,
        "targets": {"append >= 2000/s": append_ok,
                    **({"verify 1M <= 10 s": verify_ok} if entries >= 1_000_000 else {})},
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
