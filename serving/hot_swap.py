"""Hot model swap: notice an alias move in the registry, load the new versions aside, switch atomically.

The watcher polls the registry every ``interval_s`` seconds from a daemon thread. When the versions behind
the served alias differ from what is loaded, it loads the new set in the background (requests keep using
the old set meanwhile) and hands the complete, immutable set to ``on_swap``, which replaces one reference.
A request therefore sees either the old set or the new one, never a mix, and never waits on a load.
Failures (registry down, broken artifact) are logged and retried on the next poll.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

__all__ = ["DEFAULT_POLL_SECONDS", "ModelWatcher", "poll_seconds"]

log = logging.getLogger(__name__)
DEFAULT_POLL_SECONDS = 5.0


def poll_seconds() -> float:
    """``NBA_MODEL_POLL_SECONDS`` (0 turns polling off), else :data:`DEFAULT_POLL_SECONDS`."""
    raw = os.environ.get("NBA_MODEL_POLL_SECONDS")
    if raw is None:
        return DEFAULT_POLL_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"NBA_MODEL_POLL_SECONDS must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"NBA_MODEL_POLL_SECONDS must be >= 0, got {value}")
    return value


class ModelWatcher:
    """Polls ``fetch_versions`` and swaps in ``load(versions)`` when they differ from ``loaded_versions()``.

    Parameters
    ----------
    fetch_versions : callable () -> dict[str, str]
        The versions the alias points at now, per model name.
    loaded_versions : callable () -> dict[str, str]
        The versions currently served ({} when nothing is loaded).
    load : callable (dict[str, str]) -> object
        Builds the complete new model set (slow; runs on the watcher thread).
    on_swap : callable (object) -> None
        Installs the new set (fast: one reference assignment).
    interval_s : float
        Seconds between polls.
    """

    def __init__(self, fetch_versions: Callable[[], dict[str, str]], loaded_versions: Callable[[], dict[str, str]],
                 load: Callable[[dict[str, str]], object], on_swap: Callable[[object], None],
                 interval_s: float = DEFAULT_POLL_SECONDS) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.fetch_versions = fetch_versions
        self.loaded_versions = loaded_versions
        self.load = load
        self.on_swap = on_swap
        self.interval_s = interval_s
        self.swaps = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self) -> bool:
        """One poll; True when a new set was swapped in. Errors are kept in ``last_error``, not raised."""
        try:
            wanted = self.fetch_versions()
            if wanted == self.loaded_versions():
                return False
            log.info("model alias moved: %s -> %s; loading in the background", self.loaded_versions(), wanted)
            models = self.load(wanted)
            self.on_swap(models)
        except Exception as exc:  # noqa: BLE001 - a failed poll must not kill the watcher; retried next poll
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("model watcher: %s", self.last_error)
            return False
        self.last_error = None
        self.swaps += 1
        log.info("swapped to model versions %s", wanted)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check_once()

    def start(self) -> ModelWatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
