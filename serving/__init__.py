"""The decision service: catalog, funnel stages, arbitration, decision log and the BentoML shell."""

__all__ = ["arbitration", "candidates", "catalog", "contact_policy", "contracts", "decision_log", "engine"]
