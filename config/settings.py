"""Typed, validated settings for every stage, read from ``config/nba.yaml`` and environment variables.

Entry points (the CLI, the BentoML service) call :func:`load_settings` once and pass the result down;
nothing here runs at import time.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "config"
FEAST_REPO = PROJECT_ROOT / "features" / "repo"
ACTIONS_FILE = CONFIG_DIR / "actions.yaml"


class SettingsError(ValueError):
    """Raised at start-up when configuration is missing or inconsistent; the message names the key."""


@dataclass(frozen=True)
class WorldSettings:
    customers: int
    days: int
    seed: int


@dataclass(frozen=True)
class ServingSettings:
    host: str
    port: int
    default_limit: int
    max_limit: int


@dataclass(frozen=True)
class Settings:
    """Where every stage reads and writes, for one profile."""

    profile: str
    home: Path
    feast_yaml: Path
    mlflow_tracking_uri: str
    decision_log: Path
    world: WorldSettings
    serving: ServingSettings
    actions_file: Path = ACTIONS_FILE

    @property
    def raw_dir(self) -> Path:
        return self.home / "raw"

    @property
    def truth_dir(self) -> Path:
        """Simulator ground truth: read by evaluation only, never by the product's pipelines."""
        return self.home / "truth"

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def identity_dir(self) -> Path:
        return self.home / "identity"

    @property
    def features_dir(self) -> Path:
        """Offline feature tables (parquet) that the Feast file sources point at."""
        return self.home / "features"

    @property
    def feast_dir(self) -> Path:
        return self.home / "feast"

    @property
    def mlflow_dir(self) -> Path:
        return self.home / "mlflow"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def salt_file(self) -> Path:
        return self.home / "secrets" / "id_salt"

    def id_salt(self) -> bytes:
        """The HMAC salt that keys phones and e-mails: ``NBA_ID_SALT``, else a per-install random one."""
        env = os.environ.get("NBA_ID_SALT")
        if env:
            return env.encode()
        if not self.salt_file.exists():
            self.salt_file.parent.mkdir(parents=True, exist_ok=True)
            self.salt_file.write_text(secrets.token_hex(32))
            self.salt_file.chmod(0o600)
        return self.salt_file.read_text().strip().encode()


def _int(value, key: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{key} must be an integer, got {value!r}") from None
    if number < minimum:
        raise SettingsError(f"{key} must be >= {minimum}, got {number}")
    return number


def load_settings(profile: str | None = None, config_file: Path | None = None) -> Settings:
    """Load one profile; environment variables (NBA_PROFILE, NBA_HOME, MLFLOW_TRACKING_URI,
    NBA_DECISION_LOG) override the file."""
    config_file = config_file or CONFIG_DIR / "nba.yaml"
    try:
        raw = yaml.safe_load(config_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"cannot read {config_file}: {exc}") from exc
    profile = profile or os.environ.get("NBA_PROFILE", "embedded")
    profiles = raw.get("profiles") or {}
    if profile not in profiles:
        raise SettingsError(f"unknown profile {profile!r}; known: {sorted(profiles)}")
    p = profiles[profile] or {}

    home = Path(os.environ.get("NBA_HOME") or p.get("home") or ".nba")
    if not home.is_absolute():
        home = PROJECT_ROOT / home
    feast_yaml = FEAST_REPO / (p.get("feast_yaml") or "feature_store.yaml")
    if not feast_yaml.exists():
        raise SettingsError(f"profiles.{profile}.feast_yaml: {feast_yaml} does not exist")
    tracking = os.environ.get("MLFLOW_TRACKING_URI") or p.get("mlflow_tracking_uri")
    if not tracking:
        tracking = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    decision_log = Path(os.environ.get("NBA_DECISION_LOG") or p.get("decision_log") or home / "decisions.db")

    w = raw.get("world") or {}
    s = raw.get("serving") or {}
    world = WorldSettings(
        customers=_int(w.get("customers", 5000), "world.customers", 1),
        days=_int(w.get("days", 120), "world.days", 30),
        seed=_int(w.get("seed", 7), "world.seed"),
    )
    serving = ServingSettings(
        host=str(s.get("host", "127.0.0.1")),
        port=_int(s.get("port", 3000), "serving.port", 1),
        default_limit=_int(s.get("default_limit", 3), "serving.default_limit", 1),
        max_limit=_int(s.get("max_limit", 20), "serving.max_limit", 1),
    )
    return Settings(
        profile=profile,
        home=home,
        feast_yaml=feast_yaml,
        mlflow_tracking_uri=tracking,
        decision_log=decision_log,
        world=world,
        serving=serving,
    )
