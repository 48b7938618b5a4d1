"""`aegis-vault list` and `list --json` at 10k and 100k credentials: wall time and peak RSS.

One vault is filled to the first size through the core API (`Credentials.add` inside
one transaction, see common.bulk_add), measured, then topped up to the next size and
measured again. Each measurement is a cold process with stdout to /dev/null; wall
time is the median of --runs, peak RSS (ru_maxrss from os.wait4) the largest seen.

Usage: .venv/bin/python bench/list_scale.py [--sizes 10000,100000] [--runs 3] [--json FILE]
Targets: `list --json` of 100k <= 1.5 s and <= 400 MB peak RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess

from common import (
    AEGIS,
    bulk_add,
    child_env,
    compile_package,
    create_vault,
    median,
    mib,
    open_with_env,
    print_facts,
    run_repeated,
    temp_dir,
    verdict,
    write_json,
)

TARGET_S = 1.5
TARGET_MB = 400  # megabytes (10^6 bytes), as the target is stated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    print_facts()
    print(compile_package())

    results: dict[str, dict[str, float]] = {}
    with temp_dir() as tmp:
        vault, info = create_vault(os.path.join(tmp, "v"))
        vault.close()
        env = child_env(info)
        have = 0
        rows: list[str] = []
        for size in sizes:
            vault = open_with_env(info)
            load = bulk_add(vault, size - have, start=have)
            vault.close()
            subprocess.run([AEGIS, "audit", "verify"], env=env, check=True, capture_output=True)  # sanity
            loaded, have = size - have, size
            file_mib = os.path.getsize(info.path) / 2**20
            print(f"bulk-loaded {loaded:,} credentials (to {size:,}) in {load:.1f} s "
                  f"({loaded / load:,.0f}/s, one transaction); vault file {file_mib:.1f} MiB", flush=True)
            for argv in ([AEGIS, "list"], [AEGIS, "list", "--json"]):
                runs = run_repeated(argv, args.runs, env=env)
                wall = median([run.seconds for run in runs])
                cpu = median([run.cpu_seconds for run in runs])
                rss = max(run.maxrss_kib for run in runs)
                label = " ".join(["aegis-vault", *argv[1:]])
                results[f"{label} @{size}"] = {"wall_median_s": wall, "cpu_median_s": cpu, "peak_rss_kib": rss}
                rows.append(f"| {size:,} | `{label} >/dev/null` | {wall:.3f} s | "
                            f"{', '.join(f'{run.seconds:.3f}' for run in runs)} | {cpu:.3f} s | {mib(rss)} |")
        print()
        print("| credentials | command | wall median | all runs (s) | CPU median (user+sys) | peak RSS |")
        print("|---|---|---|---|---|---|")
        print("\n".join(rows))

    print()
    biggest = max(sizes)
    key = f"aegis-vault list --json @{biggest}"
    time_ok = rss_ok = None
    if biggest >= 100_000:
        wall, rss = results[key]["wall_median_s"], results[key]["peak_rss_kib"]
        time_ok, rss_ok = wall <= TARGET_S, rss * 1024 <= TARGET_MB * 10**6
        print(f"target: list --json of {biggest:,} <= {TARGET_S} s: {verdict(time_ok)} ({wall:.3f} s)")
        print(f"target: list --json of {biggest:,} <= {TARGET_MB} MB peak RSS: {verdict(rss_ok)} "
              f"({rss * 1024 / 10**6:.0f} MB = {mib(rss)})")
    else:
        print("targets apply at 100,000 credentials; not checked at these sizes")
    write_json(args.json_file, {
        "results": results,
        "targets": {} if time_ok is None else {"list --json 100k <= 1.5 s": time_ok,
                                               "list --json 100k <= 400 MB": rss_ok},
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
