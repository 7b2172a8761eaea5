"""Decision speed, in one run: in process, over HTTP against a no-op BentoML baseline, and a 100k batch.

* in process: the decision engine with every served model and a catalog extended to 20 actions (copies
  of the shipped actions under new ids), p50/p99 per decision over known and unknown customers;
* over HTTP: the real service and :mod:`serving.noop_service` started the same way (``bentoml serve``,
  one worker), the same load generator (:mod:`benchmarks.loadgen`: keep-alive HTTP/1.1 on raw asyncio
  streams in a few processes): closed-loop throughput -> ``http throughput ratio``, and an open-loop run
  on a fixed schedule -> ``http p99 ms at 200 rps`` (latency from each request's scheduled start, so
  queueing is not hidden). The no-op's own p99 at that rate, the client's CPU and how late it sent
  requests (``lag``) are printed too: they show the generator is not what is being measured. With
  ``--wrk`` (when installed) wrk's closed-loop throughput is printed as well, for comparison;
* batch: 100,000 customers through ``engine.decide_batch`` when the engine has it, else a loop of
  ``engine.decide`` (printed as ``batch mode``).

Uses ``$NBA_HOME`` when it holds a built world, else builds a small one in a temporary folder.

    .venv/bin/python benchmarks/decide.py [--customers 2000] [--seconds 10] [--batch 100000] [--wrk]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loadgen import run_load  # noqa: E402
from config import load_settings  # noqa: E402
from serving import runtime  # noqa: E402
from serving.contracts import DecideRequest  # noqa: E402

CATALOG_SIZE = 20


def _quiet() -> None:
    import logging
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore")


def prepare_world(customers: int, days: int, seed: int):
    """Settings of a built world: ``$NBA_HOME`` if it has models and features, else a fresh temporary one."""
    home = os.environ.get("NBA_HOME")
    if home and (Path(home) / "feast" / "online.db").exists() and (Path(home) / "mlflow").exists():
        return load_settings("embedded"), None
    from pipelines import stages

    tmp = Path(tempfile.mkdtemp(prefix="nba-bench-"))
    os.environ["NBA_HOME"] = str(tmp)
    os.environ.setdefault("NBA_ID_SALT", "bench-salt-not-secret")
    for var in ("MLFLOW_TRACKING_URI", "NBA_DECISION_LOG"):
        os.environ.pop(var, None)
    settings = load_settings("embedded")
    started = time.perf_counter()
    stages.build_all(settings, customers, days, seed, echo=lambda _: None)
    print(f"world build s: {time.perf_counter() - started:.1f}  (customers {customers}, days {days})")
    return settings, tmp


def extended_catalog(settings, folder: Path) -> Path:
    """The shipped catalog, with copies under new ids until it has ``CATALOG_SIZE`` actions."""
    raw = yaml.safe_load(settings.actions_file.read_text())
    actions = list(raw["actions"])
    base = list(actions)
    k = 0
    while len(actions) < CATALOG_SIZE:
        copy = dict(base[k % len(base)])
        copy["id"] = f"{copy['id']}_copy{k}"
        actions.append(copy)
        k += 1
    path = folder / "actions_20.yaml"
    path.write_text(yaml.safe_dump({**raw, "actions": actions[:max(CATALOG_SIZE, len(base))]}, sort_keys=False))
    return path


def sample_customers(settings, n: int, seed: int = 0) -> list[dict]:
    """Known customers by their pseudonymous identifiers (cookie, member, device ids are stored as sent, so
    the identity map gives raw values without touching raw data) plus 20% never-seen cookies."""
    from features.identity import read_identity_map
    from features.schema import PII_ID_TYPES

    ids = read_identity_map(settings.identity_dir)
    ids = ids[~ids["id_type"].isin(PII_ID_TYPES)]
    pairs = list(zip(ids["id_type"], ids["id_key"], strict=True))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pairs), size=n)
    unknown = rng.random(n) < 0.2
    return [{"id_type": "cookie_id", "id": f"bench-unknown-{i}"} if unknown[i]
            else {"id_type": pairs[p][0], "id": pairs[p][1]} for i, p in enumerate(picks)]


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000.0, q))


# -- in process -----------------------------------------------------------------------------------------
def in_process(settings, catalog_file: Path, customers: list[dict], batch: int) -> None:
    from serving.loader import load_champions, make_engine

    bench_settings = dataclasses.replace(settings, actions_file=catalog_file)
    engine = make_engine(bench_settings, load_champions(settings))
    runtime.settle()  # as the service does once it has started
    print(f"inprocess catalog actions: {len(engine.catalog)}")
    requests = [DecideRequest(customer=c, limit=3) for c in customers]
    for r in requests[:200]:
        engine.decide(r)
    times = []
    for r in requests:
        t = time.perf_counter()
        engine.decide(r)
        times.append(time.perf_counter() - t)
    print(f"inprocess decisions: {len(times)}")
    print(f"inprocess p50 ms: {percentile_ms(times, 50):.3f}")
    print(f"inprocess p99 ms: {percentile_ms(times, 99):.3f}")

    if batch <= 0:
        return
    batch_requests = [requests[i % len(requests)] for i in range(batch)]
    started = time.perf_counter()
    if hasattr(engine, "decide_batch"):
        mode = "engine.decide_batch"
        engine.decide_batch(batch_requests)
    else:
        mode = "loop of engine.decide (engine has no decide_batch yet)"
        for r in batch_requests:
            engine.decide(r)
    elapsed = time.perf_counter() - started
    print(f"batch mode: {mode}")
    print(f"batch customers: {batch}")
    print(f"batch {batch // 1000}k s: {elapsed:.1f}")


# -- over HTTP ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bodies(customers: list[dict]) -> list[str]:
    """One body per sampled customer: a load of a few repeated customers would keep every cache warm."""
    return [json.dumps({"customer": c, "limit": 3}) for c in customers]


def wrk_throughput(url: str, payloads: list[str], seconds: int, connections: int) -> float:
    """wrk's closed-loop requests/s with a script cycling through ``payloads`` (comparison only)."""
    script = Path(tempfile.mkdtemp()) / "post.lua"
    lines = ",\n".join(json.dumps(b) for b in payloads)
    script.write_text(
        "local bodies = {\n" + lines + "\n}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n"
        '  return wrk.format("POST", "/decide", {["Content-Type"] = "application/json"}, bodies[i])\nend\n'
    )
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        print(f"  warning: {non2xx.group(1)} non-2xx responses from {url}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def _server_cpu_s(process: subprocess.Popen) -> float | None:
    """CPU seconds used so far by the server and its workers (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    root = psutil.Process(process.pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def fsync_ms(folder: Path, n: int = 50) -> tuple[float, float]:
    """p50 and p99 of one 4 KiB append + fsync in ``folder``: every /decide waits for one or two of these
    (the decision log's group commit), so they bound the latency a busy disk allows."""
    path = folder / "fsync-probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for _ in range(n):
            os.write(fd, b"\0" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return percentile_ms(times, 50), percentile_ms(times, 99)


def over_http(settings, customers: list[dict], seconds: int, connections: int, rate: float, folder: Path,
              processes: int, use_wrk: bool, paced_seconds: int) -> None:
    from pipelines.server import start_server, stop_server, wait_ready

    payloads = bodies(customers)
    use_wrk = use_wrk and shutil.which("wrk") is not None
    print(f"http load generator: benchmarks/loadgen.py, {processes} processes; closed loop {seconds} s on "
          f"{connections} keep-alive connections, open loop {paced_seconds} s at {rate:.0f} rps; "
          f"{len(payloads)} distinct bodies")
    sync50, sync99 = fsync_ms(folder)
    print(f"disk fsync p50 ms: {sync50:.2f}")
    print(f"disk fsync p99 ms: {sync99:.2f}")
    results = {}
    for name, target in (("noop", "serving.noop_service:NoopService"), ("nba", "serving.service:NBAService")):
        port = free_port()
        log_settings = dataclasses.replace(settings, decision_log=folder / f"decisions-{name}.db")
        process = start_server(log_settings, port, log_file=folder / f"serve-{name}.log", target=target)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, process)
            run_load("closed", url, payloads, seconds=2.0, connections=connections, processes=processes)  # warm-up
            cpu_before = _server_cpu_s(process)
            closed = run_load("closed", url, payloads, seconds=seconds, connections=connections,
                              processes=processes)
            cpu_after = _server_cpu_s(process)
            paced = run_load("open", url, payloads, seconds=paced_seconds, rate=rate, connections=8,
                             processes=processes)
            wrk_rps = wrk_throughput(url, payloads, seconds, connections) if use_wrk else None
        finally:
            stop_server(process)
        results[name] = closed.rps
        print(f"http {name} throughput rps: {closed.rps:.0f}")
        if closed.failures:
            print(f"http {name} non-200 in closed loop: {closed.failures} of {closed.requests}")
        print(f"http {name} closed-loop p50 ms: {percentile_ms(closed.latencies, 50):.2f}")
        print(f"http {name} client cpu share closed loop: {closed.client_cpu_share:.2f}")
        if cpu_before is not None:
            print(f"http {name} server cpu ms per request: {1000 * (cpu_after - cpu_before) / closed.requests:.2f}")
        if wrk_rps is not None:
            print(f"http {name} throughput rps (wrk): {wrk_rps:.0f}")
        print(f"http {name} achieved rps in paced run: {paced.rps:.0f}")
        print(f"http {name} non-200 at {rate:.0f} rps: {paced.failures}")
        print(f"http {name} p50 ms at {rate:.0f} rps: {percentile_ms(paced.latencies, 50):.2f}")
        print(f"http {name} p99 ms at {rate:.0f} rps: {percentile_ms(paced.latencies, 99):.2f}")
        print(f"http {name} client send lag p99 ms at {rate:.0f} rps: {percentile_ms(paced.lags, 99):.2f}")
        if name == "nba":
            print(f"http p99 ms at {rate:.0f} rps: {percentile_ms(paced.latencies, 99):.2f}")
    print(f"http throughput ratio: {results['nba'] / results['noop']:.2f}")
    print(f"load average 1m at end: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=2000, help="world size when a world must be built")
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--decisions", type=int, default=5000, help="in-process decisions timed")
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10, help="duration of the closed-loop (throughput) run")
    parser.add_argument("--paced-seconds", type=int, default=20,
                        help="duration of the open-loop run (p99 of 200 rps x 20 s = the 40 slowest requests)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--client-processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--wrk", action="store_true", help="also print wrk's throughput (when installed)")
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    _quiet()
    settings, tmp = prepare_world(args.customers, args.days, args.seed)
    print(f"machine cpus: {os.cpu_count()}")
    print(f"load average 1m at start: {os.getloadavg()[0]:.1f}")
    folder = Path(tempfile.mkdtemp(prefix="nba-bench-run-"))
    try:
        customers = sample_customers(settings, args.decisions)
        in_process(settings, extended_catalog(settings, folder), customers, args.batch)
        if not args.skip_http:
            over_http(settings, customers, args.seconds, args.connections, args.rate, folder,
                      args.client_processes, args.wrk, args.paced_seconds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
