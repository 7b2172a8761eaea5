"""The knobs of the synthetic world, checked in one place."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class WorldConfig:
    """Size, seed and behavioural rates of one simulated world.

    Rates are per person per day unless said otherwise; the per-person values scatter around them.
    The same config always yields the same world.
    """

    customers: int = 5000
    days: int = 120
    seed: int = 7
    start: str = "2026-01-01"
    n_items: int = 200
    n_latent: int = 4               # dimension of item/taste latent vectors
    visit_rate: float = 0.25        # mean browsing sessions per day
    order_rate: float = 0.03        # mean orders per day while not churned
    churn_hazard: float = 0.004     # mean daily churn hazard
    new_customer_share: float = 0.25  # share of persons who sign up during the window
    touch_rate: float = 0.04        # daily probability the logging policy contacts a person
    withdraw_share: float = 0.08    # share of granted consents withdrawn during the window
    duplicate_share: float = 0.005  # exact duplicate events planted in the raw feed
    recycled_phone_share: float = 0.003  # persons whose phone number passes to a new person
    family_device_share: float = 0.01  # app users who also use a household member's tablet
    skewed_device_share: float = 0.05  # devices whose clock is off by minutes to hours
    late_share: float = 0.01  # events arriving in a later day's file

    def __post_init__(self) -> None:
        for name in ("customers", "days", "n_items", "n_latent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.n_items < 10:
            raise ValueError(f"n_items must be >= 10 (one per category), got {self.n_items!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        try:
            pd.Timestamp(self.start)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"start must be a date string, got {self.start!r}") from exc
        for name in ("visit_rate", "order_rate", "churn_hazard"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 <= value <= 10:
                raise ValueError(f"{name} must be in [0, 10], got {value!r}")
        for name in ("new_customer_share", "touch_rate", "withdraw_share", "duplicate_share",
                     "recycled_phone_share", "family_device_share", "skewed_device_share", "late_share"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")

    @property
    def start_ts(self) -> pd.Timestamp:
        """Window start as a UTC timestamp (naive dates are read as UTC)."""
        ts = pd.Timestamp(self.start)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
