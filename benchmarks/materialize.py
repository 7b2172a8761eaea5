"""Feast's materialize vs the fast SQLite path on the same feature tables (default 100,000 persons).

Both paths run in one process on identical parquet sources in two fresh NBA_HOMEs; the script checks that
the two online stores hold identical rows and give identical ``get_online_features`` reads, then prints
``name: value`` lines, ending with ``materialize speedup: <feast seconds / fast seconds>``.

    .venv/bin/python benchmarks/materialize.py [--persons 100000] [--snapshots 2]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import load_settings  # noqa: E402
from features.engineering import VIEW_FEATURES, write_feature_tables  # noqa: E402
from features.materialize import fast_materialize  # noqa: E402
from features.store import apply, materialize, online_features, open_store  # noqa: E402

END = pd.Timestamp("2026-06-01", tz="UTC")


def synthetic_frames(persons: int, snapshots: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Feature tables shaped like build_feature_snapshots' output: ``snapshots`` weekly rows per person."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"P{i:011d}" for i in range(persons)], dtype=object)
    frames = {}
    for view, kinds in VIEW_FEATURES.items():
        parts = []
        for k in range(snapshots):
            stamp = END - pd.Timedelta(days=7 * (snapshots - 1 - k))
            data = {"person_id": ids, "event_timestamp": pd.Series([stamp] * persons)}
            for name, kind in kinds.items():
                data[name] = (rng.integers(-1, 40, persons) if kind == "int"
                              else np.round(rng.gamma(1.5, 20.0, persons), rng.integers(0, 6)))
            parts.append(pd.DataFrame(data))
        frames[view] = pd.concat(parts, ignore_index=True)
    return frames


def settings_for(home: Path):
    os.environ["NBA_HOME"] = str(home)
    return load_settings("embedded")


def table_rows(settings) -> dict[str, list]:
    with sqlite3.connect(settings.feast_dir / "online.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: conn.execute(f'SELECT entity_key, feature_name, value, value_text, event_ts, created_ts '
                                f'FROM "{t}" ORDER BY entity_key, feature_name').fetchall() for t in tables}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--snapshots", type=int, default=2)
    args = parser.parse_args()
    frames = synthetic_frames(args.persons, args.snapshots)
    n_features = sum(len(v) for v in VIEW_FEATURES.values())
    with tempfile.TemporaryDirectory() as tmp:
        homes = {name: settings_for(Path(tmp) / name) for name in ("feast", "fast")}
        for settings in homes.values():
            write_feature_tables(frames, settings.features_dir)
            apply(settings)
        end = END.to_pydatetime() + pd.Timedelta(seconds=1)
        load = os.getloadavg()[0]

        os.sync()  # neither path pays for flushing the other's (or the setup's) dirty pages
        started, cpu = time.perf_counter(), time.process_time()
        materialize(homes["feast"], end=end)
        feast_seconds, feast_cpu = time.perf_counter() - started, time.process_time() - cpu
        os.sync()
        started, cpu = time.perf_counter(), time.process_time()
        fast_materialize(homes["fast"], end=end)
        fast_seconds, fast_cpu = time.perf_counter() - started, time.process_time() - cpu

        identical_rows = table_rows(homes["feast"]) == table_rows(homes["fast"])
        sample = list(np.random.default_rng(1).choice(frames["person_rfm"]["person_id"].unique(),
                                                      size=min(2000, args.persons), replace=False))
        reads = [online_features(open_store(s), sample, "decision_v1") for s in homes.values()]
        identical_reads = reads[0] == reads[1]
    cells = args.persons * n_features
    print(f"load average before: {load:.2f}")
    print(f"persons: {args.persons}")
    print(f"features: {n_features}")
    print(f"online cells: {cells}")
    print(f"feast materialize seconds: {feast_seconds:.2f}")
    print(f"fast materialize seconds: {fast_seconds:.2f}")
    print(f"feast rows per second: {args.persons / feast_seconds:.0f}")
    print(f"fast rows per second: {args.persons / fast_seconds:.0f}")
    print(f"feast cpu seconds: {feast_cpu:.2f}")
    print(f"fast cpu seconds (both threads): {fast_cpu:.2f}")
    print(f"identical sqlite rows: {identical_rows}")
    print(f"identical online reads: {identical_reads}")
    print(f"materialize speedup: {feast_seconds / fast_seconds:.1f}")
    if not (identical_rows and identical_reads):
        raise SystemExit("the two paths disagree")


if __name__ == "__main__":
    main()
