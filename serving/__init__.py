"""The decision service: catalog, funnel stages, arbitration, decision log and the BentoML shell."""

__all__ = [
    "arbitration", "batch", "candidates", "catalog", "contact_history", "contact_policy", "contracts",
    "decision_log", "eligibility", "engine", "experiments", "expressions", "policies", "scoring", "segments",
    "volume",
]
