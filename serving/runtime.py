"""Process settings for a long-running decision server: the garbage collector and the GIL switch interval.

Measured in this project's BentoML worker (``gc.callbacks``, per-thread CPU times):

* Everything alive after start-up (imported modules, loaded models, the web framework, the opened
  store) - 400k-570k objects - was walked by every full collection: 75-175 ms pauses that set the p99
  of even a no-op service at 200 requests/s. :func:`settle` collects once and freezes all of it
  (``gc.freeze``): frozen objects are never walked again.
* BentoML's traffic-timeout middleware arms a ``loop.call_later`` per request and never cancels it, so
  each request's timer, future and tracing context stay alive for the whole timeout (30 s): 100k+
  objects at a few hundred requests/s, promoted to the oldest generation. With the default thresholds
  that meant a 40-90 ms full collection every few seconds (p99 320 ms at 200 requests/s); with
  :data:`GC_THRESHOLDS` a full collection comes once per ~5 million container allocations (about a
  minute at 200 requests/s), young collections stay short (under ~5 ms, middle ones under ~16 ms on
  this loaded machine) and the p99 was 20 ms.
* A thread waiting for the GIL waits up to the switch interval (5 ms by default) while another thread
  computes. The decision log's writer thread needs the GIL between its SQLite calls, so with the event
  loop busy each group commit took tens of milliseconds and the server idled at 60% CPU; 1 ms lets it
  run when needed.

Both the decision service and the no-op baseline call :func:`settle`, so benchmarks compare them on
equal terms.

:func:`die_with_parent`: BentoML runs a service in a worker process with a process group of its own, so a
SIGKILL of ``bentoml serve`` (a crash, the OOM killer, the durability test) left the worker running -
still answering on the inherited socket and writing the decision log - with nothing supervising it.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import sys

__all__ = ["GC_THRESHOLDS", "SWITCH_INTERVAL_S", "die_with_parent", "settle"]

# gen0 allocations before a young collection; young collections per middle one; middle per full one
GC_THRESHOLDS = (1_000, 50, 100)
SWITCH_INTERVAL_S = 0.001


def settle() -> None:
    """Collect, freeze every surviving object, set :data:`GC_THRESHOLDS` and :data:`SWITCH_INTERVAL_S`;
    call when start-up (and warm-up) is complete, and again after loading new long-lived objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent (the BentoML arbiter) dies; Linux only.

    Call it in the worker (a BentoML startup hook), not where the service is built in-process."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)
