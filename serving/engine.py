"""The decision engine: resolve the person, read features, run the funnel, arbitrate. In process, no HTTP.

Funnel (each stage a pure function in its own module, each candidate keeps its factors and the rule that
removed it): applicability -> eligibility -> suitability (consent, holdout, quiet hours, suppression,
caps) -> arbitration P x C x V x L with Thompson exploration -> volume constraints -> top k.

The BentoML service is a thin shell around :class:`DecisionEngine`; ``decide`` returns
``(Decision, candidates)``, ``explain`` the whole funnel without side effects, ``decide_batch`` many
decisions with one propensity call per chunk, caps and volume honoured across the batch.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from config.settings import CONFIG_DIR
from features.privacy import key_identifier
from serving.arbitration import apply_context_weights, explore, select_top_k
from serving.candidates import STAGES, Candidate, apply_applicability, expand
from serving.catalog import Action
from serving.contact_history import Contact, ContactHistory, InMemoryContactHistory
from serving.contact_policy import (
    CapCounter,
    apply_caps,
    apply_consent,
    apply_holdout,
    apply_quiet_hours,
    apply_suppression,
    person_timezone,
)
from serving.contracts import (
    ActionDecision,
    CandidateExplanation,
    DecideRequest,
    Decision,
    Explanation,
    ShadowAction,
    ShadowResult,
    new_decision_id,
)
from serving.eligibility import apply_eligibility, person_scope
from serving.experiments import ExperimentConfig, assign_arm, load_experiments
from serving.policies import Policies, load_policies
from serving.scoring import Scorer
from serving.volume import VolumeLedger, plan_volume

log = logging.getLogger(__name__)

__all__ = ["DecisionEngine", "ModelSet", "PersonInput", "gc_paused"]

RECOMMENDED_ITEMS = 5
POLICIES_FILE = CONFIG_DIR / "policies.yaml"
EXPERIMENTS_FILE = CONFIG_DIR / "experiments.yaml"


@dataclass
class ModelSet:
    """The fast in-process predictors of the served models and the registry versions they came from."""

    churn: object
    propensity: object
    recommender: object
    bandit: object
    versions: dict[str, str] = field(default_factory=dict)

    def scorers(self) -> tuple[Scorer, Scorer]:
        """(propensity, churn) scorers, built once per model set."""
        cached = self.__dict__.get("_scorers")
        if cached is None or cached[0].predictor is not self.propensity or cached[1].predictor is not self.churn:
            cached = (Scorer(self.propensity), Scorer(self.churn))
            self.__dict__["_scorers"] = cached
        return cached


@dataclass
class PersonInput:
    """One request with its person already resolved (batch runs resolve and read features in bulk)."""

    request: DecideRequest
    person_id: str | None
    key: str
    features: Mapping[str, object] | None
    propensity_row: np.ndarray | None = None
    churn_score: float | None = None
    rules_passed: Mapping[str, bool] | None = None


@dataclass
class _Run:
    """Working state of one person's decision through the funnel."""

    item: PersonInput
    arm: str
    models: ModelSet
    zone: ZoneInfo
    candidates: list[Candidate]
    counter: CapCounter | None = None
    chosen: list[Candidate] = field(default_factory=list)
    scored: list[Candidate] = field(default_factory=list)
    suitable: list[Candidate] = field(default_factory=list)


@dataclass
class DecisionEngine:
    """``policies``/``experiments`` None means the shipped ``config/policies.yaml``/``experiments.yaml``;
    ``contact_history`` None means an in-memory history of this engine's own decisions."""

    catalog: tuple[Action, ...]
    lookup_person: Callable[[str, str], str | None]
    read_features: Callable[[str], Mapping[str, float] | None]
    models: ModelSet
    salt: bytes
    default_limit: int = 3
    policies: Policies | None = None
    experiments: ExperimentConfig | None = None
    contact_history: ContactHistory | None = None
    challenger: ModelSet | None = None
    rng: np.random.Generator | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    budget_shares: Mapping[str, float] | None = None
    volume: VolumeLedger | None = None

    def __post_init__(self) -> None:
        if self.policies is None:
            self.policies = load_policies(POLICIES_FILE)
        if self.experiments is None:
            self.experiments = load_experiments(EXPERIMENTS_FILE)
        if self.contact_history is None:
            self.contact_history = InMemoryContactHistory()
        if self.rng is None:
            self.rng = np.random.default_rng(self.policies.exploration.seed)
        # ``budget_shares`` overrides the bandit's; shares are re-read whenever the engine is rebuilt
        # (dataclasses.replace with new models), while a passed-in ledger keeps today's counts.
        self.shares = dict(self.budget_shares) if self.budget_shares is not None else _shares(self.models.bandit)
        plan = plan_volume(self.catalog, self.policies.volume, self.shares)
        if self.volume is None:
            self.volume = VolumeLedger(plan, getattr(self.contact_history, "used_on", None))
        else:
            self.volume.plan = plan
        self._rng_lock = threading.Lock()
        self._pairs: dict[str | None, list[tuple[Action, str]]] = {}
        self._history_days = self.policies.history_days(
            max((a.caps.per_person_days for a in self.catalog if a.caps.per_person is not None), default=0))

    # -- public API ---------------------------------------------------------------------------------
    def resolve(self, id_type: str, raw_id: str) -> str | None:
        key = key_identifier(id_type, raw_id, self.salt)
        return None if key is None else self.lookup_person(id_type, key)

    def decide(self, request: DecideRequest, *, now: datetime | None = None) -> tuple[Decision, list[Candidate]]:
        """Returns the decision and every candidate with its factors and the rule that removed it."""
        (result,) = self.decide_many([self.person_input(request)], now=now)
        return result

    def decide_batch(self, requests: Sequence[DecideRequest], *, now: datetime | None = None,
                     chunk_size: int = 5_000) -> list[tuple[Decision, list[Candidate]]]:
        """Decisions for many requests in order, caps and volume honoured across the batch.

        When ``read_features`` has ``read_many(person_ids) -> list[mapping | None]``, features are read
        once per chunk instead of once per person.
        """
        read_many = getattr(self.read_features, "read_many", None)
        if read_many is None:
            with gc_paused():
                return self.decide_many((self.person_input(r) for r in requests), now=now, chunk_size=chunk_size)

        def inputs():
            for start in range(0, len(requests), chunk_size):
                chunk = [self.person_input(r, read=False) for r in requests[start:start + chunk_size]]
                known = [i for i in chunk if i.person_id is not None]
                for item, features in zip(known, read_many([i.person_id for i in known]), strict=True):
                    item.features = features
                yield from chunk

        with gc_paused():
            return self.decide_many(inputs(), now=now, chunk_size=chunk_size)

    def explain(self, request: DecideRequest, *, now: datetime | None = None) -> Explanation:
        """The whole funnel for one customer; no contact recorded, no volume used, nothing learned.

        Exploration uses a fresh generator seeded from the person, so the same request explains the same.
        """
        item = self.person_input(request)
        now = now or self.clock()
        rng = np.random.default_rng([self.policies.exploration.seed, _stable_int(item.key)])
        ((arm, models),) = self._prepare([item])
        run = self._funnel(item, now, arm, models, score_removed=True)
        self._score([run])
        self._explore([run], now, rng)
        self._arbitrate(run, now, commit=False)
        chosen_ids = {id(c) for c in run.chosen}
        churn = _churn_for(run)
        return Explanation(
            person_id=item.person_id,
            experiment_arm=run.arm,
            cold_start=item.features is None,
            timezone=run.zone.key,
            scores={} if churn is None else {"churn_score": round(churn, 6)},
            model_versions=dict(run.models.versions),
            stages=list(STAGES),
            candidates=[
                CandidateExplanation(
                    action_id=c.action.id, channel=c.channel, purpose=c.action.purpose,
                    chosen=id(c) in chosen_ids, stage=c.stage, removed_by=c.removed_by,
                    factors=c.factors(), reasons=list(c.reasons),
                )
                for c in run.candidates
            ],
            chosen=[self._to_decision(c, churn, item.features is None) for c in run.chosen],
        )

    def person_input(self, request: DecideRequest, read: bool = True) -> PersonInput:
        """Resolve the identifier to the person (and read their features unless ``read`` is False)."""
        key = key_identifier(request.customer.id_type, request.customer.id, self.salt)
        person_id = None if key is None else self.lookup_person(request.customer.id_type, key)
        features = self.read_features(person_id) if person_id and read else None
        return PersonInput(request=request, person_id=person_id,
                           key=person_id or f"{request.customer.id_type}:{key}", features=features)

    def decide_many(self, items: Iterable[PersonInput], *, now: datetime | None = None, chunk_size: int = 5_000,
                    progress: Callable[[int], None] | None = None) -> list[tuple[Decision, list[Candidate]]]:
        """Core of decide/decide_batch: funnel per person, one model call per chunk, then arbitration
        in input order (so earlier persons take volume first, as in a campaign run)."""
        return list(self.iter_decide(items, now=now, chunk_size=chunk_size, progress=progress))

    def iter_decide(self, items: Iterable[PersonInput], *, now: datetime | None = None, chunk_size: int = 5_000,
                    progress: Callable[[int], None] | None = None) -> Iterator[tuple[Decision, list[Candidate]]]:
        """:meth:`decide_many` as a generator, chunk by chunk, so big runs need not hold every candidate."""
        now = now or self.clock()
        chunk: list[PersonInput] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= chunk_size:
                yield from self._decide_chunk(chunk, now)
                if progress is not None:
                    progress(len(chunk))
                chunk = []
        if chunk:
            yield from self._decide_chunk(chunk, now)
            if progress is not None:
                progress(len(chunk))

    # -- funnel -------------------------------------------------------------------------------------
    def _decide_chunk(self, items: list[PersonInput], now: datetime) -> list[tuple[Decision, list[Candidate]]]:
        counters: dict[str, CapCounter] = {}  # one per person: a person twice in a chunk shares the caps
        runs = [self._funnel(item, now, arm, models, counters=counters)
                for item, (arm, models) in zip(items, self._prepare(items), strict=True)]
        self._score(runs)
        with self._rng_lock:
            self._explore(runs, now, self.rng)
            for run in runs:
                self._arbitrate(run, now, commit=True)
        return [(self._decision(run), run.candidates) for run in runs]

    def _prepare(self, items: list[PersonInput]) -> list[tuple[str, ModelSet]]:
        """Arm and model set per person, and the churn score of every known person in one call per model set."""
        assigned = []
        pending: dict[int, list[PersonInput]] = {}
        for item in items:
            arm = assign_arm(item.key, self.experiments, challenger_available=self.challenger is not None)
            models = self.challenger if arm == "challenger" else self.models
            assigned.append((arm, models))
            if item.churn_score is None and item.features is not None:
                pending.setdefault(id(models), []).append(item)
        for group_models in {id(m): m for _, m in assigned}.values():
            group = pending.get(id(group_models))
            if not group:
                continue
            churn = group_models.scorers()[1]
            probs = churn.predict(np.vstack([churn.person_vector(i.features) for i in group]))
            for item, p in zip(group, probs, strict=True):
                item.churn_score = float(p)
        return assigned

    def _expand(self, channel: str | None) -> list[Candidate]:
        """:func:`serving.candidates.expand` with the catalog's (action, channel) pairs listed once."""
        pairs = self._pairs.get(channel)
        if pairs is None:
            pairs = self._pairs[channel] = [(c.action, c.channel) for c in expand(self.catalog, channel)]
        return [Candidate(action, ch) for action, ch in pairs]

    def _funnel(self, item: PersonInput, now: datetime, arm: str, models: ModelSet,
                score_removed: bool = False, counters: dict[str, CapCounter] | None = None) -> _Run:
        request, policies = item.request, self.policies
        scores = {} if item.churn_score is None else {"churn_score": item.churn_score}
        everything = self._expand(None if score_removed else request.channel)
        zone = person_timezone(item.features, request.context, policies)
        run = _Run(item=item, arm=arm, models=models, zone=zone, candidates=everything)
        kept = apply_applicability(everything, request.channel, request.placement)
        applicable = list(kept)
        kept = apply_eligibility(kept, person_scope(item.features, scores), now, item.rules_passed)
        kept = apply_consent(kept, item.features, policies)
        kept = apply_holdout(kept, arm, policies)
        kept = apply_quiet_hours(kept, now, zone, policies)
        if item.person_id is not None and any(c.channel in policies.outbound_channels for c in kept):
            since = now - timedelta(days=self._history_days)
            history = self.contact_history
            kept = apply_suppression(kept, history.rejections(item.person_id, since), policies)
            counters = {} if counters is None else counters
            if item.person_id not in counters:
                counters[item.person_id] = CapCounter(history.contacts(item.person_id, since), now, policies)
            run.counter = counters[item.person_id]
            kept = apply_caps(kept, run.counter)
        run.suitable = list(kept)
        run.scored = applicable if score_removed else kept
        return run

    def _score(self, runs: list[_Run]) -> None:
        """One propensity call per model set for every candidate still standing in the chunk."""
        by_models: dict[int, list[_Run]] = {}
        for run in runs:
            if run.scored:
                by_models.setdefault(id(run.models), []).append(run)
        for group in by_models.values():
            scorer = group[0].models.scorers()[0]
            persons, counts, actions, channels = [], [], [], []
            for run in group:
                # a precomputed row (batch runs) is in the champion's column order
                row = run.item.propensity_row if run.models is self.models else None
                persons.append(scorer.person_vector(run.item.features) if row is None else row)
                counts.append(len(run.scored))
                for c in run.scored:
                    actions.append(c.action.id)
                    channels.append(c.channel)
            rows = np.repeat(np.vstack(persons), counts, axis=0)  # each person's row once per candidate
            probs = scorer.predict(rows, actions, channels)
            i = 0
            for run in group:
                for c in run.scored:
                    c.propensity = float(probs[i])
                    i += 1

    def _explore(self, runs: list[_Run], now: datetime, rng: np.random.Generator) -> None:
        """C and the Thompson draws of every surviving candidate of the chunk, in one sampling call."""
        pool = [c for run in runs for c in run.suitable]
        apply_context_weights(pool, self.policies.context_weights)
        explore(pool, rng, now, self.policies.exploration)

    def _arbitrate(self, run: _Run, now: datetime, commit: bool) -> None:
        kept = run.suitable
        limit = run.item.request.limit or self.default_limit
        counter, day = run.counter, now.date()

        def constraint(c: Candidate) -> str | None:
            rule = counter.blocking_rule(c) if counter is not None else None
            return rule or self.volume.blocking_rule(c, day)

        def pick(c: Candidate) -> None:
            if counter is not None:
                counter.add(c)
            if commit:
                self.volume.add(c, day)

        if commit:
            with self.volume.lock:
                run.chosen = select_top_k(kept, limit, constraint, pick)
        else:
            run.chosen = select_top_k(kept, limit, constraint, pick)
        for c in run.chosen:
            c.stage = "chosen"
            c.reasons.append(f"propensity {c.propensity:.3f} for {c.action.id} on {c.channel}")
            if c.channel in (self.shares or {}):
                c.reasons.append(f"channel budget share {self.shares[c.channel]:.2f}")
            if c.action.source == "recommender":
                c.payload["items"] = self._recommend(run)
        outbound = [Contact(ts=now, action_id=c.action.id, channel=c.channel) for c in run.chosen
                    if c.channel in self.policies.outbound_channels]
        if commit and outbound and run.item.person_id is not None:
            self.contact_history.record(run.item.person_id, outbound)

    def _recommend(self, run: _Run) -> list[dict]:
        recommender = run.models.recommender
        items = recommender.recommend(run.item.person_id, RECOMMENDED_ITEMS) if run.item.person_id else []
        if not items:
            items = recommender.recommend(None, RECOMMENDED_ITEMS)
        return [{"item_id": i, "score": round(float(s), 4)} for i, s in items]

    def _shadow(self, run: _Run) -> ShadowResult | None:
        """Challenger's answer for a champion-arm person over the same suitable candidates, no exploration."""
        if not (self.experiments.shadow and self.challenger is not None and run.arm == "champion"):
            return None
        pool = run.suitable
        if not pool:
            return ShadowResult(model_versions=dict(self.challenger.versions), actions=[])
        scorer = self.challenger.scorers()[0]
        row = scorer.person_vector(run.item.features)
        probs = scorer.predict(np.repeat(row[None, :], len(pool), axis=0), [c.action.id for c in pool],
                               [c.channel for c in pool])
        shadow = [Candidate(action=c.action, channel=c.channel, propensity=float(p), context_weight=c.context_weight)
                  for c, p in zip(pool, probs, strict=True)]
        top = select_top_k(shadow, run.item.request.limit or self.default_limit)
        return ShadowResult(model_versions=dict(self.challenger.versions), actions=[
            ShadowAction(action_id=c.action.id, channel=c.channel, score=round(c.priority, 6),
                         propensity=round(c.propensity, 6)) for c in top])

    def _decision(self, run: _Run) -> Decision:
        cold_start = run.item.features is None
        churn = _churn_for(run)
        # model_construct: every field is built here from validated parts; validation would cost more
        # than the rest of a batch row.
        return Decision.model_construct(
            decision_id=new_decision_id(),
            person_id=run.item.person_id,
            actions=[self._to_decision(c, churn, cold_start) for c in run.chosen],
            model_versions=dict(run.models.versions),
            experiment_arm=run.arm,
            degraded=False,
            cold_start=cold_start,
            shadow=self._shadow(run),
        )

    @staticmethod
    def _to_decision(c: Candidate, churn: float | None, cold_start: bool) -> ActionDecision:
        reasons = list(c.reasons)
        reasons.append(f"priority = P {c.arbitration_propensity:.3f} x C {c.context_weight:.2f} x V {c.value:g} "
                       f"x L {c.lever:g}")
        if churn is not None:
            reasons.append(f"churn risk {churn:.2f}")
        if cold_start:
            reasons.append("cold start: unknown customer, popular action")
        return ActionDecision.model_construct(
            action_id=c.action.id,
            channel=c.channel,
            score=round(c.priority, 6),
            propensity=round(c.propensity, 6),
            value=c.value,
            reasons=reasons,
            payload=dict(c.payload, description=c.action.description, purpose=c.action.purpose,
                         **({"template": t} if (t := c.action.treatment(c.channel).template) else {})),
        )


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a batch: the funnel allocates many small acyclic objects
    and generation-2 scans over them took half of a 100k-person run; reference counting still frees."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _churn_for(run: _Run) -> float | None:
    return run.item.churn_score


def _shares(bandit) -> dict[str, float] | None:
    if bandit is None or not hasattr(bandit, "budget_shares"):
        return None
    try:
        return dict(bandit.budget_shares())
    except Exception as exc:  # a bandit without data must not stop the engine; volume is then unlimited
        log.warning("budget shares unavailable (%s); channel volume limits off", exc)
        return None


def _stable_int(text: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
