"""The decision service under stress, over real HTTP: SIGKILL durability, hot model swap under load,
degraded answers when the online store disappears, and the fast online reader against Feast itself."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from features.schema import CONSENT_CHANNELS
from features.store import online_features, open_store
from pipelines.server import start_server, stop_server, wait_ready
from serving.decision_log import DecisionLog
from serving.online import SqliteOnlineReader, open_online_reader
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

SWAP_DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def own_server(world, tmp_path_factory):
    """A server of its own (own decision log, registry polled every second); the SIGKILL test ends it."""
    settings, _ = world
    folder = tmp_path_factory.mktemp("own-server")
    settings = dataclasses.replace(settings, decision_log=folder / "decisions.db")
    port = free_port()
    process = start_server(settings, port, log_file=folder / "serve.log", extra_env={"NBA_MODEL_POLL_SECONDS": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield settings, url, process
    finally:
        stop_server(process)


def _person_ids(settings, n: int) -> list[str]:
    frame = pd.read_parquet(settings.features_dir / "person_rfm.parquet", columns=["person_id"])
    return sorted(frame["person_id"].unique())[:n]


def test_fast_reader_equals_feast_online_read(world):
    settings, _ = world
    reader = open_online_reader(settings)
    assert isinstance(reader, SqliteOnlineReader), "the embedded profile must get the direct SQLite reader"
    store = open_store(settings)
    for person_id in [*_person_ids(settings, 40), "P-not-a-person"]:
        values = online_features(store, [person_id], "decision_v1")
        expected = {k: v[0] for k, v in values.items() if k != "person_id"}
        if all(v is None for v in expected.values()):
            expected = None
        assert reader(person_id) == expected, person_id
    ids = [*_person_ids(settings, 40), "P-not-a-person"]
    assert reader.read_many(ids) == [reader(p) for p in ids]


def _decide(client: httpx.Client, url: str, i: int) -> httpx.Response:
    body = {"customer": {"id_type": "cookie_id", "id": f"load-{i}"}, "channel": "web", "limit": 2}
    return client.post(f"{url}/decide", json=body, timeout=30)


def test_hot_swap_under_load(world, own_server):
    settings, url, _ = own_server
    client_ml = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    old = client_ml.get_model_version_by_alias("churn", "champion").version
    statuses: list[int] = []
    seen: list[tuple[float, str]] = []
    errors: list[str] = []
    stop = threading.Event()

    def load():
        with httpx.Client() as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = _decide(client, url, i)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                    continue
                statuses.append(r.status_code)
                if r.status_code == 200:
                    seen.append((time.monotonic(), r.json()["model_versions"].get("churn")))

    thread = threading.Thread(target=load)
    thread.start()
    try:
        time.sleep(1.0)
        new = client_ml.copy_model_version(f"models:/churn/{old}", "churn").version
        client_ml.set_registered_model_alias("churn", "champion", new)
        moved = time.monotonic()
        while time.monotonic() - moved < SWAP_DEADLINE_S + 5:
            if any(t > moved and v == str(new) for t, v in seen):
                break
            time.sleep(0.2)
        time.sleep(1.0)  # keep the load on just after the swap
    finally:
        stop.set()
        thread.join(30)
        client_ml.set_registered_model_alias("churn", "champion", old)
    swapped = [t - moved for t, v in seen if t > moved and v == str(new)]
    assert swapped, f"responses never showed churn version {new} (saw {sorted({v for _, v in seen})})"
    assert swapped[0] <= SWAP_DEADLINE_S, f"swap took {swapped[0]:.1f} s"
    assert not errors, errors[:3]
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    after = [v for t, v in seen if t > moved + swapped[0]]
    assert all(v == str(new) for v in after), "after the switch no response came from the old version"


def test_sigkill_loses_no_acknowledged_write(own_server):
    settings, url, process = own_server
    decided: list[str] = []
    fed: list[tuple[str, str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(w: int) -> None:
        with httpx.Client() as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = _decide(client, url, w * 100_000 + i)
                    if r.status_code != 200:
                        continue
                    answer = r.json()
                    with lock:
                        decided.append(answer["decision_id"])
                    if answer["actions"]:
                        body = {"decision_id": answer["decision_id"], "action_id": answer["actions"][0]["action_id"],
                                "outcome": "click"}
                        if client.post(f"{url}/feedback", json=body, timeout=30).status_code == 200:
                            with lock:
                                fed.append((body["decision_id"], body["action_id"], "click"))
                except httpx.HTTPError:
                    if stop.is_set() or process.poll() is not None:
                        return

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(worker, w) for w in range(8)]
        deadline = time.monotonic() + 60
        while len(fed) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)  # mid-flight: requests are still being answered
        process.wait(10)
        stop.set()
        for f in futures:
            f.result(60)
    assert len(fed) >= 150, f"only {len(fed)} feedbacks acknowledged before the deadline"
    log = DecisionLog(settings.decision_log)
    try:
        db = log._db
        stored = {row[0] for row in db.execute("SELECT decision_id FROM decisions")}
        stored_fb = set(db.execute("SELECT decision_id, action_id, outcome FROM feedback").fetchall())
    finally:
        log.close()
    assert set(decided) <= stored, f"{len(set(decided) - stored)} acknowledged decisions lost"
    assert set(fed) <= stored_fb, f"{len(set(fed) - stored_fb)} acknowledged feedbacks lost"


def _known_cookie(settings) -> str:
    """A cookie id of a person with online features (cookies are pseudonymous: stored as sent)."""
    from features.identity import IdentityIndex, read_identity_map
    from features.privacy import key_identifier

    ids = read_identity_map(settings.identity_dir)
    index = IdentityIndex(ids)
    with_features = set(_person_ids(settings, 10**9))
    cookies = ids[ids["id_type"] == "cookie_id"]
    for cookie, person in zip(cookies["id_key"], cookies["person_id"], strict=True):
        if person in with_features and index.lookup(
                "cookie_id", key_identifier("cookie_id", cookie, settings.id_salt())) == person:
            return cookie
    raise AssertionError("no known cookie in the tiny world")


def test_degraded_without_online_store_then_recovers(world, server):
    settings, _ = world
    store_file = settings.feast_dir / "online.db"
    body = {"customer": {"id_type": "cookie_id", "id": _known_cookie(settings)}, "limit": 5}
    first = httpx.post(f"{server}/decide", json=body, timeout=30).json()
    assert first["degraded"] is False and first["cold_start"] is False

    moved = store_file.with_suffix(".db.moved")
    store_file.rename(moved)
    try:
        started = time.perf_counter()
        r = httpx.post(f"{server}/decide", json=body, timeout=30)
        elapsed = time.perf_counter() - started
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["degraded"] is True and "online store" in answer["degraded_reason"]
        assert elapsed < 0.5, f"degraded answer took {elapsed * 1000:.0f} ms"
        assert all(a["channel"] not in CONSENT_CHANNELS for a in answer["actions"]), "no outbound when degraded"
    finally:
        moved.rename(store_file)
    recovered = httpx.post(f"{server}/decide", json=body, timeout=30).json()
    assert recovered["degraded"] is False and recovered["degraded_reason"] is None
