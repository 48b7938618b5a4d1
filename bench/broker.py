"""The broker: a cold `aegis-vault get` through it beside `pass show`, `run -- true`
beside bare `true`, what verifying the caller costs per request, and requests per
second with standing grants.

A headless broker (`aegis-vault serve`, environment-key slot) serves a throwaway vault
holding one credential under a standing grant (so no pop-up). The measured processes
get no AEGIS_VAULT_KEY: every value comes from the broker, which audits each request
(one signed, durable audit entry per `get`; concurrent requests share a commit).

1. ONE hyperfine run of five commands, so their ratios see the same load:
   `aegis-vault get NAME` (through the broker, from a shell outside any session),
   `pass show NAME` (a throwaway gpg key and store, as in get_cold.py), the venv's
   `python -c pass` (the floor of any Python CLI), `aegis-vault run -- true` (through
   the broker: its hello, the audit report; no `--need`, and `true` prints nothing
   to mask) and bare `true`. Then the same five commands in interleaved rounds (each
   round runs each once, in a new random order): hyperfine runs one command's runs
   back to back, so on a shared machine a burst of someone else's load can land on one
   command; interleaving spreads it over all five. The verdicts use the interleaved
   medians; both tables are printed. With `--before REV`, the rounds also run the
   `get` of that revision of the package (`git archive`, on PYTHONPATH) against the
   same broker, and the modules each `get` imports are counted (`-X importtime`).
2. Verified provenance, in this process, median per call: `describe_process` (what the
   broker reads from /proc about each caller, to the root) for a caller whose chain is
   3 and 30 processes long, and the checks of an `inject` request from a real
   `aegis-vault run` (`verify_run_client`, `verify_run_reporter`) when this version
   has them.
3. Broker throughput: client processes, each with several connections kept open,
   issue `get` requests as fast as the answers come back; requests/second over the
   whole run, every answer checked.

Usage: .venv/bin/python bench/broker.py [--runs 40] [--warmup 5] [--rounds 40] [--before REV]
       [--calls 2000] [--clients 4] [--connections 8] [--seconds 5] [--json FILE]
Targets: get through the broker <= 1.0x `pass show` (medians, same run); `run -- true`
overhead <= 30 ms (median); provenance <= 2 ms per request; >= 5,000 requests/s.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator

from common import (
    AEGIS,
    ROOT,
    VENV_PYTHON,
    child_env,
    compile_package,
    create_vault,
    hyperfine,
    hyperfine_table,
    interleaved,
    interleaved_table,
    print_facts,
    ratio,
    temp_dir,
    verdict,
    write_json,
)
from get_cold import NAME, VALUE, setup_pass

from aegis_tui.core.agents.grants import INJECT, REVEAL, Grants
from aegis_tui.core.broker.runtime import socket_path
from aegis_tui.core.broker.wire import encode_request
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.secret import Secret

VALUE_B64 = base64.b64encode(VALUE.encode())
GET_RATIO_TARGET = 1.0
RUN_OVERHEAD_TARGET_S = 0.030
PROVENANCE_TARGET_S = 0.002
RPS_TARGET = 5000
CHAIN_LENGTHS = (3, 30)

# A chain of processes hanging from pid 1 (or from the nearest subreaper): `sh` levels
# down to a leaf that writes its pid and becomes `sleep`. Each level waits for its child
# (`exit $?` keeps the shell from replacing itself with it), so killing the leaf ends it.
CHAIN_SCRIPT = """n=$1; out=$2
if [ "$n" -gt 2 ]; then sh "$0" $((n - 1)) "$out"; exit $?; fi
echo $$ > "$out.tmp" && mv "$out.tmp" "$out"
exec sleep 600
"""


def wait_for_socket(path: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(path)
                return
            except OSError:
                pass
            finally:
                probe.close()
        time.sleep(0.05)
    raise RuntimeError("the broker did not start")


def client_process(path: str, connections: int, seconds: float, start: float, results: multiprocessing.Queue) -> None:
    """Keep ``connections`` requests in flight; count answers until the deadline."""
    import selectors

    request = encode_request(1, "get", {"ref": NAME}, None)
    expected = b'"ok":true'
    selector = selectors.DefaultSelector()
    socks = []
    for _ in range(connections):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, bytearray())
        socks.append(sock)
    while time.time() < start:
        time.sleep(0.001)
    deadline = time.time() + seconds
    answered = failed = 0
    for sock in socks:
        sock.sendall(request)
    while time.time() < deadline:
        for key, _ in selector.select(timeout=0.5):
            buffer: bytearray = key.data
            chunk = key.fileobj.recv(65536)  # type: ignore[union-attr]
            if not chunk:
                raise RuntimeError("the broker closed a connection")
            buffer += chunk
            while b"\n" in buffer:
                line, _, rest = bytes(buffer).partition(b"\n")
                buffer[:] = rest
                if expected in line and VALUE_B64 in line:
                    answered += 1
                else:
                    failed += 1
                key.fileobj.sendall(request)  # type: ignore[union-attr]
    results.put((answered, failed))
    for sock in socks:
        sock.close()


def throughput(path: str, clients: int, connections: int, seconds: float) -> tuple[float, int, int]:
    results: multiprocessing.Queue = multiprocessing.Queue()
    start = time.time() + 1.0
    procs = [multiprocessing.Process(target=client_process, args=(path, connections, seconds, start, results))
             for _ in range(clients)]
    for proc in procs:
        proc.start()
    totals = [results.get(timeout=seconds + 60) for _ in procs]
    for proc in procs:
        proc.join()
    answered = sum(t[0] for t in totals)
    failed = sum(t[1] for t in totals)
    return answered / seconds, answered, failed


@contextlib.contextmanager
def process_chain(tmp: str, length: int) -> Iterator[int]:
    """The pid of a process whose chain to the root is ``length`` long (when nothing
    between it and pid 1 is a subreaper); the chain is ended afterwards."""
    script = os.path.join(tmp, "chain.sh")
    with open(script, "w", encoding="utf-8") as handle:
        handle.write(CHAIN_SCRIPT)
    out = os.path.join(tmp, f"chain-{length}.pid")
    # The outer shell starts the chain in the background and exits: the chain's top
    # is reparented, so the bench's own ancestors are not part of it.
    subprocess.run(["sh", "-c", 'sh "$0" "$1" "$2" </dev/null >/dev/null 2>&1 &', script, str(length), out],
                   check=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(out):
        if time.monotonic() > deadline:
            raise RuntimeError("the process chain did not start")
        time.sleep(0.01)
    with open(out, encoding="utf-8") as handle:
        leaf = int(handle.read())
    try:
        yield leaf
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(leaf, 15)


def package_at(revision: str, tmp: str) -> str:
    """A folder holding ``aegis_tui`` as of ``revision`` (compiled), to put on PYTHONPATH."""
    folder = os.path.join(tmp, "before")
    os.mkdir(folder)
    archive = subprocess.run(["git", "-C", ROOT, "archive", revision, "aegis_tui"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
    subprocess.run([VENV_PYTHON, "-m", "compileall", "-q", os.path.join(folder, "aegis_tui")], check=True)
    return folder


def imports_of(argv: list[str], env: dict[str, str]) -> set[str]:
    """The modules a process imports, by name, from ``-X importtime``."""
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, capture_output=True, text=True,
                          check=True)
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def per_call(function: Callable[[], object], calls: int) -> tuple[float, float]:
    """(median, p90) seconds per call over ``calls`` calls, after 50 to warm up."""
    for _ in range(50):
        function()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def provenance(tmp: str, env: dict[str, str], calls: int) -> dict[str, dict[str, float]]:
    """Median and p90 per call of what the broker verifies about a caller."""
    from aegis_tui.core.processes import describe_process

    found: dict[str, dict[str, float]] = {}

    def record(label: str, function: Callable[[], object]) -> None:
        median, p90 = per_call(function, calls)
        found[label] = {"median_s": median, "p90_s": p90}
        print(f"  {label:<62} median {median * 1e6:7.1f} µs   p90 {p90 * 1e6:7.1f} µs")

    uid = os.getuid()
    print(f"verified provenance, in this process, {calls:,} calls each:")
    for length in CHAIN_LENGTHS:
        with process_chain(tmp, length) as leaf:
            chain = describe_process(leaf, uid).chain
            record(f"describe_process, chain of {len(chain)} (asked for {length})",
                   lambda leaf=leaf: describe_process(leaf, uid))
    try:
        from aegis_tui.core.operations.provenance import verify_run_client, verify_run_reporter
    except ImportError:
        print("  (no verify_run_client in this version: inject checks not measured)")
        return found
    # A real `aegis-vault run` through the broker, kept alive by its command.
    sleeper = shutil.which("sleep") or "/bin/sleep"
    run = subprocess.Popen([AEGIS, "run", "--", "sleep", "30"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # started, connected and running its command
        if run.poll() is not None:
            print(f"  (aegis-vault run exited with {run.returncode}: inject checks not measured)")
            return found
        peer = describe_process(run.pid, uid)
        record(f"describe_process of that `aegis-vault run` (chain of {len(peer.chain)})",
               lambda: describe_process(run.pid, uid))
        record("verify_run_client (inject: argv, program, interpreter)",
               lambda: verify_run_client(peer, ["sleep", "30"], os.path.realpath(sleeper)))
        record("verify_run_reporter (mask stream, run.report)", lambda: verify_run_reporter(peer))
        total = found[f"describe_process of that `aegis-vault run` (chain of {len(peer.chain)})"]["median_s"] + \
            found["verify_run_client (inject: argv, program, interpreter)"]["median_s"]
        found["inject request: describe_process + verify_run_client"] = {"median_s": total, "p90_s": float("nan")}
        print(f"  {'an inject request: describe_process + verify_run_client':<62} median {total * 1e6:7.1f} µs")
    finally:
        run.terminate()
        run.wait(timeout=30)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds of the five commands")
    parser.add_argument("--calls", type=int, default=2000, help="calls per provenance measurement")
    parser.add_argument("--before", metavar="REV", help="also time the get of this git revision (e.g. 7254ec7)")
    parser.add_argument("--clients", type=int, default=4, help="client processes for the throughput run")
    parser.add_argument("--connections", type=int, default=8, help="connections per client process")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", dest="json_file")
    args = parser.parse_args()
    print_facts()
    print(compile_package())

    with temp_dir() as tmp:
        home = os.path.join(tmp, "aegis")
        vault, info = create_vault(home)
        credential = Credentials(vault).add(NAME, Secret(VALUE))
        # A standing grant that lets the human's shell read it (get) and run inject it.
        Grants(vault).create(credential=credential, reason="benchmark: a standing grant", rights=(INJECT, REVEAL))
        vault.close()
        pass_env = setup_pass(tmp)
        runtime = os.path.join(tmp, "runtime")
        os.mkdir(runtime, 0o700)
        serve_env = child_env(info, XDG_RUNTIME_DIR=runtime)
        broker = subprocess.Popen([AEGIS, "serve"], env=serve_env, stderr=subprocess.DEVNULL)
        try:
            os.environ["XDG_RUNTIME_DIR"] = runtime  # where this process looks for the socket, too
            path = socket_path(info.path)
            wait_for_socket(path)
            env = child_env(None, AEGIS_VAULT_HOME=info.home, XDG_RUNTIME_DIR=runtime,
                            GNUPGHOME=pass_env["GNUPGHOME"], PASSWORD_STORE_DIR=pass_env["PASSWORD_STORE_DIR"])
            env.pop("AEGIS_VAULT_KEY", None)
            got = subprocess.run([AEGIS, "get", NAME], env=env, capture_output=True, check=True).stdout
            assert got.decode() == VALUE, "get through the broker does not return the stored value"

            ran = subprocess.run([AEGIS, "run", "--", "true"], env=env, capture_output=True, check=False)
            assert ran.returncode == 0, f"run -- true through the broker failed: {ran.stderr.decode()[-500:]}"

            print("environment: AEGIS_VAULT_HOME=<tmp> XDG_RUNTIME_DIR=<tmp> GNUPGHOME=<tmp> "
                  "PASSWORD_STORE_DIR=<tmp>, no AEGIS_VAULT_KEY, no AEGIS_SESSION")
            results = hyperfine({"aegis": f"{AEGIS} get {NAME}", "pass": f"pass show {NAME}",
                                 "python": f"{VENV_PYTHON} -c pass", "run": f"{AEGIS} run -- true", "true": "true"},
                                env, args.runs, args.warmup, os.path.join(tmp, "hyperfine.json"))
            hyperfine_table(results)
            print(f"interleaved: {args.rounds} rounds, each running every command once, in a random order")
            commands = {"aegis": [AEGIS, "get", NAME], "pass": ["pass", "show", NAME],
                        "python": [VENV_PYTHON, "-c", "pass"], "run": [AEGIS, "run", "--", "true"], "true": ["true"]}
            envs = {}
            if args.before:
                envs["before"] = {**env, "PYTHONPATH": package_at(args.before, tmp)}
                commands["before"] = [AEGIS, "get", NAME]
                got = subprocess.run(commands["before"], env=envs["before"], capture_output=True, check=True).stdout
                assert got.decode() == VALUE, f"the get of {args.before} does not return the stored value"
            mixed = interleaved(commands, env, args.rounds, envs=envs)
            if args.before:
                mixed["before"]["command"] = f"PYTHONPATH=<aegis_tui as of {args.before}> {AEGIS} get {NAME}"
            interleaved_table(mixed)
            if args.before:
                floor = imports_of([VENV_PYTHON, "-c", "pass"], env)
                for label, run_env in (("this checkout", env), (args.before, envs["before"])):
                    extra = imports_of([VENV_PYTHON, AEGIS, "get", NAME], run_env) - floor
                    print(f"modules `get` imports beyond `python -c pass` ({label}): {len(extra)}: "
                          + ", ".join(sorted(extra)))
            checks = provenance(tmp, env, args.calls)
            print()
            print(f"throughput: {args.clients} client processes x {args.connections} connections, "
                  f"{args.seconds:.0f} s, one `get` in flight per connection")
            rps, answered, failed = throughput(path, args.clients, args.connections, args.seconds)
        finally:
            broker.terminate()
            broker.wait(timeout=30)
            if shutil.which("gpgconf"):
                subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=pass_env, check=False)

    hyperfine_medians = {key: r["median"] for key, r in results.items()}
    medians = {key: r["median"] for key, r in mixed.items()}
    cpu = {key: r["cpu_median"] for key, r in mixed.items()}
    get_ratio = ratio(medians["aegis"], medians["pass"])
    get_ok = get_ratio <= GET_RATIO_TARGET
    overhead = medians["run"] - medians["true"]
    run_ok = overhead <= RUN_OVERHEAD_TARGET_S
    worst = max((check["median_s"] for check in checks.values()), default=float("nan"))
    provenance_ok = worst <= PROVENANCE_TARGET_S
    rps_ok = rps >= RPS_TARGET and failed == 0
    print(f"hyperfine medians: get / pass show {ratio(hyperfine_medians['aegis'], hyperfine_medians['pass']):.2f}, "
          f"run -- true overhead {(hyperfine_medians['run'] - hyperfine_medians['true']) * 1000:.1f} ms")
    print("interleaved medians (the verdicts below):")
    print(f"ratio get-through-broker / pass show (medians): {get_ratio:.2f}; "
          f"/ python -c pass: {ratio(medians['aegis'], medians['python']):.2f}; "
          f"python -c pass / pass show: {ratio(medians['python'], medians['pass']):.2f}")
    print(f"CPU (user+sys, median): get {cpu['aegis'] * 1000:.1f} ms, pass show {cpu['pass'] * 1000:.1f} ms, "
          f"python -c pass {cpu['python'] * 1000:.1f} ms, run -- true {cpu['run'] * 1000:.1f} ms")
    print(f"target: get through the broker <= {GET_RATIO_TARGET:.1f}x pass show: {verdict(get_ok)} "
          f"({medians['aegis'] * 1000:.1f} ms vs {medians['pass'] * 1000:.1f} ms: {get_ratio:.2f}x)")
    print(f"target: run -- true overhead <= {RUN_OVERHEAD_TARGET_S * 1000:.0f} ms: {verdict(run_ok)} "
          f"({overhead * 1000:.1f} ms: {medians['run'] * 1000:.1f} ms vs {medians['true'] * 1000:.1f} ms)")
    print(f"target: verified provenance <= {PROVENANCE_TARGET_S * 1000:.0f} ms per request: {verdict(provenance_ok)} "
          f"(largest median {worst * 1e6:.0f} µs)")
    print(f"target: >= {RPS_TARGET:,} requests/s: {verdict(rps_ok)} ({rps:,.0f}/s; {answered:,} answered, "
          f"{failed} wrong)")
    write_json(args.json_file, {"medians_s": medians, "hyperfine_medians_s": hyperfine_medians, "cpu_median_s": cpu, "get_ratio_to_pass": get_ratio,
                                "run_overhead_s": overhead, "provenance": checks, "requests_per_second": rps,
                                "targets": {"get <= 1.0x pass show": get_ok, "run overhead <= 30 ms": run_ok,
                                            "provenance <= 2 ms per request": provenance_ok,
                                            "requests/s >= 5000": rps_ok}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
