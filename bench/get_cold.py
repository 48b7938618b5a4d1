"""Cold `aegis-vault get NAME` (environment slot) beside `pass show NAME` and `python -c pass`.

One hyperfine run measures the three commands, interleaved in the same minute, so
their ratios are meaningful even on a noisy machine. `pass` uses a throwaway GNUPGHOME
with a passphrase-less key and a throwaway PASSWORD_STORE_DIR; its gpg-agent is
stopped afterwards. `python -c pass` (the venv interpreter) is the floor any Python
CLI pays before running a line of its own.

Each `aegis-vault get` opens the vault, unlocks with AEGIS_VAULT_KEY (one signed audit
entry, one commit), decrypts the value and commits a signed "read" audit entry.

Usage: .venv/bin/python bench/get_cold.py [--runs 50] [--warmup 5] [--json FILE]
Target: median <= 60 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess

from common import (
    AEGIS,
    VENV_PYTHON,
    child_env,
    compile_package,
    create_vault,
    hyperfine,
    hyperfine_table,
    print_facts,
    ratio,
    temp_dir,
    verdict,
    write_json,
)

from aegis_tui.core.credentials import Credentials
from aegis_tui.core.secret import Secret

NAME = "bench-token"
VALUE = "sk-bench-0123456789abcdef0123456789abcdef"
TARGET_S = 0.060


def setup_pass(tmp: str) -> dict[str, str]:
    """A throwaway gpg key and password store holding NAME; returns the env for `pass`."""
    gnupg = os.path.join(tmp, "gnupg")
    store = os.path.join(tmp, "password-store")
    os.makedirs(gnupg, mode=0o700)
    env = dict(os.environ, GNUPGHOME=gnupg, PASSWORD_STORE_DIR=store)
    quiet = {"env": env, "check": True, "capture_output": True}
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
                    "bench <bench@example.invalid>", "default", "default", "never"], **quiet)
    listing = subprocess.run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], text=True, **quiet).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    subprocess.run(["pass", "init", fingerprint], **quiet)
    subprocess.run(["pass", "insert", "-m", NAME], input=(VALUE + "\n").encode(), env=env, check=True,
                   capture_output=True)
    shown = subprocess.run(["pass", "show", NAME], text=True, **quiet).stdout
    assert shown.strip() == VALUE, "pass does not return the stored value"
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    print_facts()
    print(compile_package())

    with temp_dir() as tmp:
        vault, info = create_vault(os.path.join(tmp, "aegis"))
        Credentials(vault).add(NAME, Secret(VALUE))
        vault.close()
        pass_env = setup_pass(tmp)
        env = child_env(info, GNUPGHOME=pass_env["GNUPGHOME"], PASSWORD_STORE_DIR=pass_env["PASSWORD_STORE_DIR"])
        got = subprocess.run([AEGIS, "get", NAME], env=env, capture_output=True, check=True).stdout
        assert got.decode() == VALUE, "aegis-vault get does not return the stored value"

        commands = {
            "aegis": f"{AEGIS} get {NAME}",
            "pass": f"pass show {NAME}",
            "python": f"{VENV_PYTHON} -c pass",
        }
        print("environment: AEGIS_VAULT_HOME=<tmp> AEGIS_VAULT_KEY=<key> GNUPGHOME=<tmp> PASSWORD_STORE_DIR=<tmp>")
        try:
            results = hyperfine(commands, env, args.runs, args.warmup, os.path.join(tmp, "hyperfine.json"))
        finally:
            if shutil.which("gpgconf"):
                subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=pass_env, check=False)

    medians = {key: result["median"] for key, result in results.items()}
    hyperfine_table(results)
    aegis_pass = ratio(medians["aegis"], medians["pass"])
    aegis_python = ratio(medians["aegis"], medians["python"])
    print(f"ratio aegis/pass   (medians): {aegis_pass:.2f}")
    print(f"ratio aegis/python (medians): {aegis_python:.2f}  "
          f"(aegis work beyond interpreter start-up: {(medians['aegis'] - medians['python']) * 1000:.1f} ms)")
    cpu = {key: result["user"] + result["system"] for key, result in results.items()}
    print(f"ratio aegis/pass   (CPU user+sys): {ratio(cpu['aegis'], cpu['pass']):.2f}; "
          f"aegis/python (CPU): {ratio(cpu['aegis'], cpu['python']):.2f}")
    met = medians["aegis"] <= TARGET_S
    print(f"target: aegis-vault get median <= {TARGET_S * 1000:.0f} ms: {verdict(met)} "
          f"({medians['aegis'] * 1000:.1f} ms)")
    write_json(args.json_file, {
        "medians_s": medians, "cpu_mean_s": cpu, "ratio_aegis_pass": aegis_pass, "ratio_aegis_python": aegis_python,
        "targets": {"get median <= 60 ms": met},
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
