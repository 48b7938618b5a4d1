"""The broker: a cold `aegis-vault get` through it beside `pass show`, `run -- true`
beside bare `true`, and requests per second with standing grants.

A headless broker (`aegis-vault serve`, environment-key slot) serves a throwaway vault
holding one credential under a standing grant. The measured processes get no
AEGIS_VAULT_KEY: every value comes from the broker, which audits each request (one
signed, durable audit entry per `get`; concurrent requests share a commit).

1. hyperfine, one run: `aegis-vault get NAME` (through the broker), `pass show NAME`
   (a throwaway gpg key and store, as in get_cold.py), `python -c pass` (the floor).
2. hyperfine, one run: `aegis-vault run -- true` beside `true` (the overhead of
   injection + masking set-up + the audit report; no `--need`, so no grant lookup).
3. Broker throughput: client processes, each with several connections kept open,
   issue `get` requests as fast as the answers come back; requests/second over the
   whole run, every answer checked.

Usage: .venv/bin/python bench/broker.py [--runs 40] [--clients 4] [--connections 8]
       [--seconds 5] [--json FILE]
Targets: get through the broker no slower than `pass show`; `run -- true` overhead
<= 40 ms; >= 5,000 requests/s.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import shutil
import socket
import subprocess
import time

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
from get_cold import NAME, VALUE, setup_pass

from aegis_tui.core.agents.grants import Grants
from aegis_tui.core.broker.runtime import socket_path
from aegis_tui.core.broker.wire import encode_request
from aegis_tui.core.credentials import Credentials
from aegis_tui.core.secret import Secret

VALUE_B64 = base64.b64encode(VALUE.encode())
RUN_OVERHEAD_TARGET_S = 0.040
RPS_TARGET = 5000


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
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
        Grants(vault).create(credential=credential, reason="benchmark: a standing grant")
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

            get_results = hyperfine({"aegis": f"{AEGIS} get {NAME}", "pass": f"pass show {NAME}",
                                     "python": f"{VENV_PYTHON} -c pass"}, env, args.runs, args.warmup,
                                    os.path.join(tmp, "get.json"))
            hyperfine_table(get_results)
            run_results = hyperfine({"run": f"{AEGIS} run -- true", "true": "true"}, env, args.runs, args.warmup,
                                    os.path.join(tmp, "run.json"))
            hyperfine_table(run_results)
            print(f"throughput: {args.clients} client processes x {args.connections} connections, "
                  f"{args.seconds:.0f} s, one `get` in flight per connection")
            rps, answered, failed = throughput(path, args.clients, args.connections, args.seconds)
        finally:
            broker.terminate()
            broker.wait(timeout=30)
            if shutil.which("gpgconf"):
                subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=pass_env, check=False)

    medians = {key: r["median"] for key, r in {**get_results, **run_results}.items()}
    get_ok = medians["aegis"] <= medians["pass"]
    overhead = medians["run"] - medians["true"]
    run_ok = overhead <= RUN_OVERHEAD_TARGET_S
    rps_ok = rps >= RPS_TARGET and failed == 0
    print(f"ratio get-through-broker / pass show (medians): {ratio(medians['aegis'], medians['pass']):.2f}; "
          f"/ python -c pass: {ratio(medians['aegis'], medians['python']):.2f}")
    print(f"target: get through the broker no slower than pass show: {verdict(get_ok)} "
          f"({medians['aegis'] * 1000:.1f} ms vs {medians['pass'] * 1000:.1f} ms)")
    print(f"target: run -- true overhead <= {RUN_OVERHEAD_TARGET_S * 1000:.0f} ms: {verdict(run_ok)} "
          f"({overhead * 1000:.1f} ms: {medians['run'] * 1000:.1f} ms vs {medians['true'] * 1000:.1f} ms)")
    print(f"target: >= {RPS_TARGET:,} requests/s: {verdict(rps_ok)} ({rps:,.0f}/s; {answered:,} answered, "
          f"{failed} wrong)")
    write_json(args.json_file, {"medians_s": medians, "run_overhead_s": overhead, "requests_per_second": rps,
                                "targets": {"get <= pass show": get_ok, "run overhead <= 40 ms": run_ok,
                                            "requests/s >= 5000": rps_ok}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
