"""One tiny world built through the real pipeline (Feast, MLflow) and one real BentoML server over HTTP,
shared by the integration tests of a session."""

from __future__ import annotations

import socket

import pytest

from config import load_settings
from pipelines import stages
from pipelines.server import start_server, stop_server, wait_ready

TINY = {"customers": 600, "days": 100, "seed": 11}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("nba-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("NBA_HOME", str(home))
    mp.setenv("NBA_ID_SALT", "test-salt-not-secret")
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.delenv("NBA_DECISION_LOG", raising=False)
    settings = load_settings("embedded")
    results = stages.build_all(settings, TINY["customers"], TINY["days"], TINY["seed"], echo=lambda _: None)
    yield settings, results
    mp.undo()


@pytest.fixture(scope="session")
def server(world):
    settings, _ = world
    port = free_port()
    process = start_server(settings, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url
    finally:
        stop_server(process)
