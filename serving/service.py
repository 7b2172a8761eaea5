"""The BentoML service channel apps call: /decide, /feedback (plus BentoML's /healthz, /readyz, /metrics).

Thin on purpose: the funnel lives in :class:`serving.engine.DecisionEngine`. This shell adds what only a
running server needs - the durable decision log, hot model swaps (:mod:`serving.hot_swap`), degraded
answers when the store or the models fail (:mod:`serving.degraded`), and a guarded HTTP edge
(:mod:`serving.http_guard`: body limit, JSON error bodies, a log without raw identifiers).

``/decide`` and ``/feedback`` are async: a decision is well under a millisecond of CPU, less than handing
it to a worker thread and back costs, and 16 threads taking turns on the GIL slowed every request. They
run on the event loop and await the decision log's group commit, so waiting for the disk holds no thread.
``/explain`` and ``/decide_batch`` (longer, rarer) stay on worker threads so they never stall the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from datetime import datetime

import bentoml
from bentoml.exceptions import NotFound, ServiceUnavailable
from starlette.responses import Response

from config import load_settings
from features.privacy import mask_text
from serving import runtime
from serving.catalog import load_catalog
from serving.contact_history import SQLiteContactHistory
from serving.contracts import (
    Customer,
    DecideBatchRequest,
    DecideBatchResponse,
    DecideRequest,
    Decision,
    Explanation,
    FeedbackAck,
    FeedbackRequest,
)
from serving.decision_log import DecisionLog, UnknownDecision
from serving.degraded import FailureNote, GuardedReader, safe_default
from serving.engine import POLICIES_FILE
from serving.hot_swap import ModelWatcher, poll_seconds
from serving.http_guard import MAX_BODY_BYTES, RequestGuard, install_log_masking
from serving.loader import load_served, make_engine, served_versions, with_models
from serving.online import LazyReader, OnlineStoreUnavailable, open_online_reader
from serving.policies import load_policies

__all__ = ["NBAService"]

log = logging.getLogger("nba.serving")


@bentoml.service(name="nba", traffic={"timeout": 30}, workers=1, threads=16)
class NBAService:
    """One deployable: loads the champions at start-up, follows alias moves, answers even when degraded."""

    def __init__(self) -> None:
        install_log_masking("nba.serving", "serving")
        self.settings = settings = load_settings()
        self.catalog = load_catalog(settings.actions_file)  # a broken catalog is a deploy error: refuse to start
        # FULL (default) fsyncs every group commit: survives power loss. NORMAL survives a process kill only.
        outbound = load_policies(POLICIES_FILE).outbound_channels
        self.decision_log = DecisionLog(settings.decision_log, os.environ.get("NBA_DECISION_LOG_SYNC", "FULL"),
                                        contact_channels=outbound)
        # caps read the log back, plus the contacts of decisions not yet written
        self.contact_history = SQLiteContactHistory(settings.decision_log, outbound)
        self.note = FailureNote()
        self._online = LazyReader(lambda: open_online_reader(settings))
        self.reader = GuardedReader(self._online, self.note)
        self.engine = None
        self.models_error: str | None = None
        self._install_lock = threading.Lock()
        try:
            self._install(load_served(settings, served_versions(settings)), settle=False)
        except Exception as exc:  # noqa: BLE001 - no models yet: serve the safe default, the watcher retries
            self.models_error = f"decision engine unavailable: {type(exc).__name__}: {mask_text(str(exc))}"
            log.error("starting degraded: %s", self.models_error)
        self._warm_up()
        runtime.settle()
        self.watcher = None
        interval = poll_seconds()
        if interval > 0:
            self.watcher = ModelWatcher(
                fetch_versions=lambda: served_versions(settings),
                loaded_versions=self._served,
                load=lambda wanted: load_served(settings, wanted, reuse=self._model_sets()),
                on_swap=self._install,
                interval_s=interval,
            ).start()
        versions = self._served()
        log.info("NBA service ready (profile %s, models %s)", settings.profile, versions or self.models_error)

    # -- model set management ---------------------------------------------------------------------------
    def _model_sets(self) -> dict:
        engine = self.engine
        if engine is None:
            return {}
        return {"champion": engine.models, "challenger": getattr(engine, "challenger", None)}

    def _served(self) -> dict:
        """The versions being served, in the shape of :func:`serving.loader.served_versions`."""
        sets = self._model_sets()
        if not sets:
            return {}
        challenger = sets["challenger"]
        return {"champion": dict(sets["champion"].versions),
                "challenger": None if challenger is None else dict(challenger.versions)}

    def _loaded_versions(self) -> dict[str, str]:
        return self._served().get("champion") or {}

    def _warm_up(self) -> None:
        """Open the online store and run the whole funnel once (an explain: no contact, no volume, no log),
        so the first requests do not pay for lazy imports and opening, and all of it is frozen with the
        rest of start-up. Failures here only mean the first requests will find out (degraded)."""
        try:
            self._online.open()
        except OnlineStoreUnavailable as exc:
            log.warning("online store not available at start-up: %s", exc)
        if self.engine is not None:
            try:
                self.engine.explain(DecideRequest(customer=Customer(id_type="cookie_id", id="nba-warm-up")))
            except Exception as exc:  # noqa: BLE001 - warm-up is best effort
                log.warning("warm-up decision failed: %s: %s", type(exc).__name__, mask_text(str(exc)))
        self.note.clear()

    def _install(self, sets: dict, settle: bool = True) -> None:
        """Swap in complete model sets: one reference assignment, so no request sees a half-loaded set."""
        with self._install_lock:
            engine = self.engine
            if engine is None:
                engine = make_engine(self.settings, sets["champion"], self.reader, challenger=sets["challenger"],
                                     contact_history=self.contact_history)
            else:
                engine = with_models(engine, sets["champion"], sets["challenger"])
            self.engine = engine
            self.models_error = None
        if settle:  # newly loaded models are long-lived too (see serving.runtime)
            runtime.settle()

    @bentoml.on_startup
    def _die_with_arbiter(self) -> None:
        runtime.die_with_parent()  # no orphaned worker writing the log after `bentoml serve` is killed

    def __is_ready__(self) -> bool:
        # Ready as soon as start-up finished: without models the service still answers (degraded).
        return self.decision_log is not None

    # -- APIs -------------------------------------------------------------------------------------------
    def _decide(self, request: DecideRequest) -> tuple[Decision, list]:
        engine = self.engine
        self.note.clear()
        if engine is None:
            reason = self.models_error or "models unavailable"
        else:
            try:
                decision, candidates = engine.decide(request)
            except Exception as exc:  # noqa: BLE001 - a failing model or store degrades, never a 5xx
                reason = f"decision engine failed: {type(exc).__name__}: {mask_text(str(exc))}"
                log.warning(reason)
            else:
                failure = self.note.take()
                if failure:
                    decision = decision.model_copy(update={"degraded": True, "degraded_reason": failure})
                return decision, candidates
        limit = request.limit or self.settings.serving.default_limit
        versions = self._loaded_versions()
        return safe_default(self.catalog, request.channel, limit, reason, versions), []

    @bentoml.api(input_spec=DecideRequest)
    async def decide(
        self,
        customer: Customer,
        channel: str | None = None,
        placement: str | None = None,
        context: dict | None = None,
        limit: int | None = None,
    ) -> Decision:
        # the fields were validated by BentoML against DecideRequest: no second validation
        request = DecideRequest.model_construct(
            customer=customer, channel=channel, placement=placement, context=context or {}, limit=limit
        )
        decision, candidates = self._decide(request)
        # answered only once the decision is on disk (group commit); encoding happens on the writer thread
        try:
            await asyncio.wrap_future(self.decision_log.submit_decisions([(decision, channel, candidates)]))
        finally:
            self.contact_history.written([decision])
        # the same JSON BentoML would write, as one body message: its own path streams a body in several
        # messages, each passed through every middleware; the contract (OpenAPI) stays ``Decision``
        return Response(decision.model_dump_json(), media_type="application/json")

    @bentoml.api(input_spec=FeedbackRequest)
    async def feedback(
        self,
        decision_id: str,
        action_id: str,
        outcome: str,
        value: float | None = None,
        ts: datetime | None = None,
    ) -> FeedbackAck:
        try:
            new = await asyncio.wrap_future(
                self.decision_log.submit_feedback(decision_id, action_id, outcome, value, ts))
        except UnknownDecision as exc:
            raise NotFound(exc.args[0]) from None
        return FeedbackAck(decision_id=decision_id, action_id=action_id, outcome=outcome, duplicate=not new)

    @bentoml.api(input_spec=DecideRequest)
    def explain(
        self,
        customer: Customer,
        channel: str | None = None,
        placement: str | None = None,
        context: dict | None = None,
        limit: int | None = None,
    ) -> Explanation:
        """The whole funnel for one customer; not logged, never learned from."""
        request = DecideRequest(
            customer=customer, channel=channel, placement=placement, context=context or {}, limit=limit
        )
        engine = self.engine
        if engine is None:
            raise ServiceUnavailable(f"cannot explain: {self.models_error or 'models unavailable'}")
        self.note.clear()
        explanation = engine.explain(request)
        self.note.take()
        return explanation

    @bentoml.api(input_spec=DecideBatchRequest)
    def decide_batch(self, requests: list[DecideRequest]) -> DecideBatchResponse:
        """Many customers in one call (outbound runs): caps and volume hold across the batch; all logged."""
        engine = self.engine
        self.note.clear()
        results = None
        if engine is not None:
            try:
                results = engine.decide_batch(list(requests))
            except Exception as exc:  # noqa: BLE001 - degrade the whole batch, never a 5xx
                reason = f"decision engine failed: {type(exc).__name__}: {mask_text(str(exc))}"
                log.warning(reason)
        else:
            reason = self.models_error or "models unavailable"
        if results is None:
            versions = self._loaded_versions()
            results = [(safe_default(self.catalog, r.channel, r.limit or self.settings.serving.default_limit,
                                     reason, versions), []) for r in requests]
        failure = self.note.take()
        if failure:
            results = [(d.model_copy(update={"degraded": True, "degraded_reason": failure})
                        if d.person_id is not None and not d.degraded else d, c) for d, c in results]
        try:
            self.decision_log.record_decisions(
                (d, r.channel, c) for (d, c), r in zip(results, requests, strict=True))
        finally:
            self.contact_history.written(d for d, _ in results)
        return DecideBatchResponse(decisions=[d for d, _ in results])


NBAService.add_asgi_middleware(RequestGuard, max_body_bytes=MAX_BODY_BYTES)
