"""Outbound batch runs: every person of a segment, decided on one channel, written to parquet.

Scoring is vectorised (one churn and one propensity call per chunk of persons); the engine's funnel,
caps and volume ledger run across the whole batch, so a campaign never exceeds a cap or a channel budget.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from serving.contact_policy import consent_mask
from serving.contracts import DecideRequest, new_decision_id
from serving.engine import DecisionEngine, PersonInput, gc_paused
from serving.experiments import assign_arm
from serving.segments import Segment, segment_mask
from serving.segments import rule_mask as segment_rule_mask

__all__ = ["BATCH_COLUMNS", "latest_offline_features", "run_segment_batch", "write_batch"]

BATCH_COLUMNS = ("decision_id", "person_id", "experiment_arm", "rank", "action_id", "channel", "score",
                 "propensity", "send_after")


def latest_offline_features(features_dir: Path) -> pd.DataFrame:
    """The latest snapshot of every view per person, joined: one row per person, indexed by person_id."""
    joined = None
    for path in sorted(Path(features_dir).glob("*.parquet")):
        frame = pd.read_parquet(path)
        if "person_id" not in frame.columns:
            continue
        frame = frame.sort_values("event_timestamp").drop_duplicates("person_id", keep="last")
        frame = frame.drop(columns=["event_timestamp"]).set_index("person_id")
        joined = frame if joined is None else joined.join(frame, how="outer")
    if joined is None:
        raise FileNotFoundError(f"no feature tables in {features_dir}: run `nba features build` first")
    return joined


def run_segment_batch(engine: DecisionEngine, features: pd.DataFrame, segment: Segment, channel: str,
                      limit: int = 1, now: datetime | None = None, chunk_size: int = 5_000,
                      progress: Callable[[int], None] | None = None, prefilter: bool = True,
                      record: Callable[[list[tuple]], None] | None = None) -> tuple[pd.DataFrame, int]:
    """Decide for every person of ``segment`` in ``features`` (indexed by person_id) on ``channel``.

    Returns (one row per chosen action, and a rank-0 row without action for members who get none;
    number of persons in the segment). ``record`` gets the funnel's ``(decision, channel, candidates)``
    a chunk at a time (the decision log: feedback on a campaign's decisions, caps on its contacts).
    """
    propensity, churn = engine.models.scorers()
    churn_scores = np.concatenate([
        churn.predict(churn.person_matrix(features.iloc[i:i + chunk_size]))
        for i in range(0, len(features), chunk_size)
    ]) if len(features) else np.zeros(0)
    mask = segment_mask(segment, features, {"churn_score": churn_scores})
    members = features[mask]
    member_churn = churn_scores[mask]
    scores = {"churn_score": member_churn}
    rules = {a.id: segment_rule_mask(a.eligibility, members, scores) for a in engine.catalog
             if a.eligibility is not None and channel in a.channels}
    # Persons none of whose actions passes its rule and consent would leave the funnel empty-handed:
    # they get their (arm-only) row directly, the others go through the whole funnel.
    possible = np.zeros(len(members), dtype=bool)
    for action in engine.catalog:
        if channel in action.channels:
            passed = rules.get(action.id, np.ones(len(members), dtype=bool))
            possible |= passed & consent_mask(members, channel, action.purpose, engine.policies)
    if not prefilter:
        possible[:] = True
    request = DecideRequest.model_construct(customer=None, channel=channel, placement=None, context={},
                                            limit=limit)
    rows: list[tuple] = []

    challenger = engine.challenger is not None
    for pid in members.index[~possible]:
        rows.append((new_decision_id(), str(pid), assign_arm(str(pid), engine.experiments, challenger), 0, None,
                     None, None, None, None))
    if progress is not None and (~possible).any():
        progress(int((~possible).sum()))
    candidates = members[possible]
    candidate_churn = member_churn[possible]
    rules = {a: m[possible] for a, m in rules.items()}

    def items():
        for start in range(0, len(candidates), chunk_size):
            block = candidates.iloc[start:start + chunk_size]
            matrix = propensity.person_matrix(block)
            records = block.to_dict("records")
            for j, (pid, record) in enumerate(zip(block.index, records, strict=True)):
                k = start + j
                yield PersonInput(request=request, person_id=str(pid), key=str(pid), features=record,
                                  propensity_row=matrix[j], churn_score=float(candidate_churn[k]),
                                  rules_passed={a: bool(m[k]) for a, m in rules.items()})

    decided: list[tuple] = []
    with gc_paused():
        for decision, funnel in engine.iter_decide(items(), now=now, chunk_size=chunk_size, progress=progress):
            if record is not None:
                decided.append((decision, channel, funnel))
                if len(decided) >= chunk_size:
                    record(decided)
                    decided = []
            if not decision.actions:  # kept so every member's arm (holdout included) is on record
                rows.append((decision.decision_id, decision.person_id, decision.experiment_arm, 0, None, None,
                             None, None, None))
            for rank, a in enumerate(decision.actions, start=1):
                rows.append((decision.decision_id, decision.person_id, decision.experiment_arm, rank,
                             a.action_id, a.channel, a.score, a.propensity, a.payload.get("send_after")))
    if decided:
        record(decided)
    return pd.DataFrame(rows, columns=list(BATCH_COLUMNS)), int(mask.sum())


def write_batch(frame: pd.DataFrame, directory: Path, segment: str, channel: str, now: datetime) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{segment}-{channel}-{now:%Y%m%dT%H%M%S}.parquet"
    frame.to_parquet(path, index=False)
    return path
