"""Start and stop the BentoML decision service as a real HTTP server (used by the CLI, the demo, tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from config import PROJECT_ROOT, Settings


def server_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(NBA_PROFILE=settings.profile, NBA_HOME=str(settings.home),
               MLFLOW_TRACKING_URI=settings.mlflow_tracking_uri, NBA_DECISION_LOG=str(settings.decision_log))
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    return env


def serve_command(host: str, port: int, target: str = "serving.service:NBAService") -> list[str]:
    bentoml = Path(sys.executable).with_name("bentoml")
    return [str(bentoml), "serve", target, "--host", host, "--port", str(port)]


def start_server(settings: Settings, port: int, log_file: Path | None = None,
                 extra_env: dict[str, str] | None = None, target: str = "serving.service:NBAService",
                 ) -> subprocess.Popen:
    """Start ``bentoml serve`` for ``target`` in its own process group (so a stop reaches its workers).

    ``extra_env`` adds variables such as ``NBA_MODEL_POLL_SECONDS``; ``target`` lets benchmarks start
    another service (the no-op baseline) exactly the same way.
    """
    log_file = log_file or settings.home / "logs" / f"serve-{port}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_file, "ab")  # noqa: SIM115 - owned by the child process for its lifetime
    return subprocess.Popen(
        serve_command(settings.serving.host, port, target), cwd=PROJECT_ROOT,
        env={**server_env(settings), **(extra_env or {})},
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_ready(url: str, process: subprocess.Popen | None = None, timeout: float = 180.0) -> None:
    """Poll ``/readyz`` until the service has loaded its models; fail fast if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"decision service exited with code {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"decision service at {url} not ready after {timeout:.0f} s")


def stop_server(process: subprocess.Popen, timeout: float = 20.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()
