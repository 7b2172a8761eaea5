import threading

import pytest

from serving.hot_swap import ModelWatcher, poll_seconds


class _Registry:
    def __init__(self):
        self.versions = {"churn": "1"}
        self.fail = False

    def fetch(self):
        if self.fail:
            raise ConnectionError("registry down")
        return dict(self.versions)


def _watcher(registry, served, loads):
    def load(versions):
        loads.append(versions)
        return {"versions": versions}

    return ModelWatcher(registry.fetch, lambda: served["set"]["versions"], load,
                        lambda s: served.__setitem__("set", s), interval_s=0.01)


def test_swaps_only_when_the_alias_moved():
    registry, served, loads = _Registry(), {"set": {"versions": {"churn": "1"}}}, []
    watcher = _watcher(registry, served, loads)
    assert watcher.check_once() is False and loads == []
    registry.versions = {"churn": "2"}
    assert watcher.check_once() is True
    assert served["set"]["versions"] == {"churn": "2"} and watcher.swaps == 1
    assert watcher.check_once() is False


def test_registry_failure_is_kept_and_retried():
    registry, served, loads = _Registry(), {"set": {"versions": {}}}, []
    watcher = _watcher(registry, served, loads)
    registry.fail = True
    assert watcher.check_once() is False and "registry down" in watcher.last_error
    registry.fail = False
    assert watcher.check_once() is True and watcher.last_error is None


def test_background_thread_swaps_and_stops():
    registry, served, loads = _Registry(), {"set": {"versions": {"churn": "1"}}}, []
    swapped = threading.Event()
    watcher = _watcher(registry, served, loads)
    watcher.on_swap = lambda s: (served.__setitem__("set", s), swapped.set())
    watcher.start()
    registry.versions = {"churn": "3"}
    assert swapped.wait(5)
    watcher.stop(5)
    assert served["set"]["versions"] == {"churn": "3"}


@pytest.mark.parametrize("raw, expected", [(None, 5.0), ("2.5", 2.5), ("0", 0.0)])
def test_poll_seconds_from_environment(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv("NBA_MODEL_POLL_SECONDS", raising=False)
    else:
        monkeypatch.setenv("NBA_MODEL_POLL_SECONDS", raw)
    assert poll_seconds() == expected


@pytest.mark.parametrize("raw, message", [("soon", "number of seconds"), ("-1", ">= 0")])
def test_poll_seconds_rejects_bad_values(monkeypatch, raw, message):
    monkeypatch.setenv("NBA_MODEL_POLL_SECONDS", raw)
    with pytest.raises(ValueError, match=message):
        poll_seconds()


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval_s"):
        ModelWatcher(dict, dict, dict, print, interval_s=0)


def test_served_versions_read_champion_and_challenger_aliases_from_a_real_registry(tmp_path, monkeypatch):
    """What the watcher polls, against a real MLflow registry (SQLite): champions, the challenger set
    (its own alias where set, else the champion), and a clear error naming a model without a champion."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from config import load_settings
    from serving.loader import SERVED_MODELS, served_versions

    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("NBA_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # restored after the test, as mlflow's own URIs below
    settings = load_settings("embedded")
    assert settings.mlflow_tracking_uri == uri
    client = MlflowClient(uri, uri)
    try:
        for name in SERVED_MODELS:
            client.create_registered_model(name)
            for _ in range(2):
                client.create_model_version(name, source=str(tmp_path / name))
            if name != "recommender":
                client.set_registered_model_alias(name, "champion", "1")
        with pytest.raises(MlflowException, match="recommender"):
            served_versions(settings)

        client.set_registered_model_alias("recommender", "champion", "2")
        champions = {"churn": "1", "propensity": "1", "recommender": "2", "budget_bandit": "1"}
        assert served_versions(settings) == {"champion": champions, "challenger": None}

        client.set_registered_model_alias("propensity", "challenger", "2")
        assert served_versions(settings) == {"champion": champions,
                                             "challenger": {**champions, "propensity": "2"}}
        client.delete_registered_model_alias("propensity", "challenger")
        assert served_versions(settings)["challenger"] is None
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
