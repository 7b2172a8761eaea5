"""Shared small-world settings and an independent identifier canonicalisation for the simulator tests."""

from __future__ import annotations

from simulator import WorldConfig

SMALL = WorldConfig(customers=800, days=90, seed=11)


def canonical(id_type: str, value: str) -> str:
    """The tests' own canonicalisation of a raw identifier (independent of the simulator's code)."""
    if id_type == "phone":
        digits = "".join(ch for ch in value if ch.isdigit())
        if len(digits) == 13 and digits.startswith("86"):
            digits = digits[2:]
        return "+86" + digits
    if id_type == "email":
        return value.strip().lower()
    return value
