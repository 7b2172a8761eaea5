"""Segments: saved audience definitions for outbound runs ("at-risk high-value", "new in 30 days").

Each segment is a safe expression (:mod:`serving.expressions`) over the decision features and person
scores, kept in ``config/segments.yaml`` and evaluated on whole columns at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from serving.catalog import known_names
from serving.expressions import Expression, ExpressionError, compile_expression

__all__ = ["Segment", "SegmentError", "load_segments", "parse_segments", "rule_mask", "segment_mask"]


class SegmentError(ValueError):
    """segments.yaml is invalid or names an unknown segment; the message names it."""


@dataclass(frozen=True)
class Segment:
    name: str
    description: str
    rule: Expression


def parse_segments(raw: dict | None, names: frozenset[str] | None = None) -> dict[str, Segment]:
    names = known_names() if names is None else names
    entries = (raw or {}).get("segments")
    if not isinstance(entries, dict) or not entries:
        raise SegmentError("segments.yaml needs a non-empty mapping under 'segments'")
    out = {}
    for name, spec in entries.items():
        if not isinstance(spec, dict) or not spec.get("rule"):
            raise SegmentError(f"segment {name!r}: field 'rule' is required")
        try:
            rule = compile_expression(str(spec["rule"]), names)
        except ExpressionError as exc:
            raise SegmentError(f"segment {name!r}: field 'rule' {exc}") from None
        out[str(name)] = Segment(name=str(name), description=str(spec.get("description", "")), rule=rule)
    return out


def load_segments(path: Path) -> dict[str, Segment]:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SegmentError(f"cannot read segments {path}: {exc}") from exc
    return parse_segments(raw)


def segment_mask(segment: Segment, frame: pd.DataFrame, scores: Mapping[str, np.ndarray] | None = None
                 ) -> np.ndarray:
    """Boolean mask (len(frame),) of the persons in the segment; missing values never match."""
    return rule_mask(segment.rule, frame, scores)


def rule_mask(rule: Expression, frame: pd.DataFrame, scores: Mapping[str, np.ndarray] | None = None
              ) -> np.ndarray:
    """Any expression over the frame's columns (plus score arrays), as a boolean mask (len(frame),)."""
    columns = {}
    for name in rule.names:
        if scores and name in scores:
            columns[name] = np.asarray(scores[name], dtype=np.float64)
        elif name in frame.columns:
            columns[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return rule.evaluate_columns(columns, len(frame))
