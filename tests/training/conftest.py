"""A small synthetic resolved lake (LAKE_COLUMNS + person_id) with planted structure, and settings in tmp."""

import numpy as np
import pandas as pd
import pytest

from config.settings import ACTIONS_FILE, FEAST_REPO, ServingSettings, Settings, WorldSettings
from features.schema import LAKE_COLUMNS

START = pd.Timestamp("2026-01-01", tz="UTC")
TOUCH_CHANNELS = {"sms": ("discount_10", 0.04), "email": ("new_arrivals", 0.08), "app": ("discount_10", 0.25)}


def make_events(n_persons: int = 240, days: int = 84, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []

    def add(ts, channel, event_type, person, **props):
        rows.append({"event_id": f"E{len(rows)}", "ts": ts, "channel": channel, "event_type": event_type,
                     "identifiers": "{}", "person_id": person, **props})

    n_items = 48
    for p in range(n_persons):
        person = f"P{p:012x}"
        taste = p % 4
        liked = [i for i in range(n_items) if i % 4 == taste]
        lapse_day = rng.integers(20, days + 40)  # after this day the person stops buying
        for day in range(days):
            ts = START + pd.Timedelta(days=day, hours=int(rng.integers(8, 22)))
            if rng.random() < 0.25:
                item = int(rng.choice(liked)) if rng.random() < 0.85 else int(rng.integers(n_items))
                add(ts, "web", "product_view", person, item_id=f"I{item:03d}", category=f"c{item % 4}")
            if day < lapse_day and rng.random() < 0.06:
                item = int(rng.choice(liked))
                add(ts + pd.Timedelta(minutes=5), "app", "order", person, item_id=f"I{item:03d}",
                    category=f"c{item % 4}", amount=50.0, order_id=f"O{len(rows)}")
            if rng.random() < 0.08:
                channel = str(rng.choice(list(TOUCH_CHANNELS)))
                action, rate = TOUCH_CHANNELS[channel]
                touch_id = f"T{len(rows)}"
                add(ts, channel, "touch", person, touch_id=touch_id, action_id=action)
                if rng.random() < rate:
                    add(ts + pd.Timedelta(days=int(rng.integers(0, 5))), channel, "conversion", person,
                        touch_id=touch_id, action_id=action, amount=30.0)
    frame = pd.DataFrame(rows)
    for column in LAKE_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame[[*LAKE_COLUMNS, "person_id"]].sort_values("ts", kind="stable").reset_index(drop=True)


@pytest.fixture(scope="session")
def events() -> pd.DataFrame:
    return make_events()


@pytest.fixture
def settings(tmp_path) -> Settings:
    home = tmp_path / "nba"
    return Settings(
        profile="embedded", home=home, feast_yaml=FEAST_REPO / "feature_store.yaml",
        mlflow_tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}", decision_log=home / "decisions.db",
        world=WorldSettings(customers=240, days=84, seed=0),
        serving=ServingSettings(host="127.0.0.1", port=3000, default_limit=3, max_limit=20),
        actions_file=ACTIONS_FILE,
    )
