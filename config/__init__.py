"""Configuration: YAML catalogs and policies beside the typed loader that validates them."""

from config.settings import ACTIONS_FILE, FEAST_REPO, PROJECT_ROOT, Settings, SettingsError, load_settings

__all__ = ["ACTIONS_FILE", "FEAST_REPO", "PROJECT_ROOT", "Settings", "SettingsError", "load_settings"]
