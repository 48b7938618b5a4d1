"""Unlock time: passphrase (calibrated Argon2id), environment key, recovery key.

In-process, through the core API: ``Vault.open`` + ``unlock_with_*`` + ``close`` per
sample, so each sample also includes opening the SQLite file and committing the
signed "unlock" audit entry (one fsync). The passphrase slot uses the parameters
``aegis-vault init`` would pick on this machine (``calibrate_kdf()``: ~0.5 s, never
below 64 MiB). The bare Argon2id derivation is timed too, to show what the unlock
costs beyond it.

Usage: .venv/bin/python bench/unlock.py [--runs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import time

from common import (
    create_vault,
    median,
    ms,
    new_env_key,
    print_facts,
    temp_dir,
    verdict,
    write_json,
)

from aegis_tui.core.crypto import MIN_MEMORY_KIB, calibrate_kdf, derive_passphrase_key
from aegis_tui.core.secret import Secret
from aegis_tui.core.vault import Vault

PASSPHRASE = "correct horse battery staple bench"


def sample(path: str, unlock: str, secret: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        vault = Vault.open(path)
        if unlock == "passphrase":
            vault.unlock_with_passphrase(Secret(secret))
        elif unlock == "env":
            vault.unlock_with_env_key(secret)
        else:
            vault.unlock_with_recovery(Secret(secret))
        vault.close()
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="passphrase unlocks (median); default 5")
    parser.add_argument("--fast-runs", type=int, default=50, help="env/recovery unlocks (median); default 50")
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    print_facts()

    started = time.perf_counter()
    kdf = calibrate_kdf()
    calibration = time.perf_counter() - started
    print(f"calibrated Argon2id: memory_kib={kdf.memory_kib} ({kdf.memory_kib // 1024} MiB), "
          f"iterations={kdf.iterations}, lanes={kdf.lanes} (calibration took {ms(calibration)})")

    with temp_dir() as tmp:
        env_key = new_env_key()
        vault, info = create_vault(os.path.join(tmp, "v"), env_key=env_key, passphrase=PASSPHRASE, kdf=kdf)
        vault.close()

        # Interleaved, so machine noise hits both series alike.
        derive: list[float] = []
        passphrase: list[float] = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            derive_passphrase_key(PASSPHRASE.encode(), kdf)
            derive.append(time.perf_counter() - t0)
            passphrase += sample(info.path, "passphrase", PASSPHRASE, 1)
        env = sample(info.path, "env", env_key, args.fast_runs)
        recovery = sample(info.path, "recovery", info.recovery_code, args.fast_runs)

    p_med, d_med = median(passphrase), median(derive)
    print(f"passphrase unlock      median of {args.runs}: {ms(p_med)}  "
          f"(all: {', '.join(ms(t) for t in passphrase)})")
    print(f"  Argon2id alone       median of {args.runs}: {ms(d_med)}  (interleaved with the unlocks)")
    print(f"env-key unlock         median of {args.fast_runs}: {ms(median(env))}  (min {ms(min(env))})")
    print(f"recovery unlock        median of {args.fast_runs}: {ms(median(recovery))}  (min {ms(min(recovery))})")
    floor_ok = kdf.memory_kib >= MIN_MEMORY_KIB
    band_ok = 0.25 <= d_med <= 1.5
    print(f"check: memory_kib >= {MIN_MEMORY_KIB} (64 MiB): {verdict(floor_ok)}")
    print(f"check: Argon2id near the 0.5 s calibration target (0.25-1.5 s on a noisy machine): {verdict(band_ok)}")
    write_json(args.json_file, {
        "memory_kib": kdf.memory_kib, "iterations": kdf.iterations, "lanes": kdf.lanes,
        "passphrase_unlock_median_s": p_med, "argon2id_median_s": d_med,
        "env_unlock_median_s": median(env), "recovery_unlock_median_s": median(recovery),
        "targets": {"memory_kib >= 65536": floor_ok, "argon2id 0.25-1.5 s": band_ok},
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
