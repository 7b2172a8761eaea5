"""Every evaluation plot a classifier run logs to MLflow, in one place.

Figures are built on ``matplotlib.figure.Figure`` (Agg canvas when saved): no pyplot global state, safe
in servers, threads and notebooks without a display.
"""

from __future__ import annotations

import warnings

import numpy as np
from matplotlib.figure import Figure

from models.calibration import calibration_table

__all__ = ["calibration_figure", "classifier_figures", "importance_figure", "lift_gain_figure", "pr_figure",
           "roc_figure"]


def _both_classes(y) -> bool:
    return len(np.unique(np.asarray(y))) > 1


def roc_figure(y, curves: dict[str, np.ndarray], title: str) -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    if _both_classes(y):
        for label, s in curves.items():
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y, s):.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {title}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def pr_figure(y, curves: dict[str, np.ndarray], title: str) -> Figure:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    if _both_classes(y):
        for label, s in curves.items():
            precision, recall, _ = precision_recall_curve(y, s)
            ax.plot(recall, precision, label=f"{label} (AP {average_precision_score(y, s):.3f})")
    ax.axhline(float(np.mean(y)) if len(y) else 0.0, color="k", ls="--", lw=0.8, label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall: {title}")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def calibration_figure(y, curves: dict[str, np.ndarray], title: str, bins: int = 10) -> Figure:
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for label, s in curves.items():
        mean_p, rate, _ = calibration_table(y, s, bins)
        ax.plot(mean_p, rate, "o-", label=label)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=f"Calibration: {title}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def lift_gain_figure(y, curves: dict[str, np.ndarray], title: str) -> Figure:
    """Cumulative gain (share of positives found in the top x%) and lift (gain / x)."""
    y = np.asarray(y, dtype=float)
    fig = Figure(figsize=(10, 4.5))
    gain_ax, lift_ax = fig.subplots(1, 2)
    total = y.sum()
    for label, s in curves.items():
        order = np.argsort(-np.asarray(s), kind="stable")
        share = np.arange(1, len(y) + 1) / max(len(y), 1)
        gain = np.cumsum(y[order]) / total if total else np.zeros(len(y))
        gain_ax.plot(share, gain, label=label)
        lift_ax.plot(share, np.divide(gain, share, out=np.zeros_like(gain), where=share > 0), label=label)
    gain_ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="random")
    lift_ax.axhline(1.0, color="k", ls="--", lw=0.8, label="random")
    gain_ax.set(xlabel="share targeted (by score)", ylabel="share of positives", title=f"Gain: {title}")
    lift_ax.set(xlabel="share targeted (by score)", ylabel="lift", title=f"Lift: {title}")
    gain_ax.legend(loc="lower right")
    lift_ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def importance_figure(importance: dict[str, float], title: str, top: int = 20) -> Figure:
    items = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig = Figure(figsize=(6, max(2.5, 0.3 * len(items) + 1)))
    ax = fig.subplots()
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set(xlabel="total gain", title=f"Feature importance: {title}")
    fig.tight_layout()
    return fig


def classifier_figures(y, curves: dict[str, np.ndarray], importance: dict[str, float], title: str,
                       prefix: str) -> dict[str, Figure]:
    """{artifact file name: figure} for one evaluated classifier."""
    with warnings.catch_warnings():  # CJK/emoji column names: a missing glyph is cosmetic
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        return _figures(y, curves, importance, title, prefix)


def _figures(y, curves, importance, title, prefix) -> dict[str, Figure]:
    return {
        f"{prefix}_roc.png": roc_figure(y, curves, title),
        f"{prefix}_pr.png": pr_figure(y, curves, title),
        f"{prefix}_calibration.png": calibration_figure(y, curves, title),
        f"{prefix}_lift_gain.png": lift_gain_figure(y, curves, title),
        f"{prefix}_importance.png": importance_figure(importance, title),
    }
