"""Item recommenders over implicit interactions (views, carts, orders).

``MatrixFactorizationRecommender`` learns person and item embeddings with PyTorch and the BPR loss
(Rendle et al., 2009, "BPR: Bayesian Personalized Ranking from Implicit Feedback"). After fit the
factors are copied to numpy, so a recommendation is one dot product and an ``argpartition``: serving
never imports torch. ``loss="softmax"`` trains the same factors with a sampled softmax over the catalogue
instead (Covington et al., 2016, "Deep Neural Networks for YouTube Recommendations").
``PopularityRecommender`` and ``ItemKNNRecommender`` (cosine item-item, Sarwar et al., 2001) are the
baselines it must beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models._lgbm import NotFittedError

ARRAYS_FILE = "recommender.npz"
LOSSES = ("bpr", "softmax")


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest finite scores, best first (ties broken by index for determinism)."""
    finite = np.isfinite(scores)
    k = min(k, int(finite.sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(len(scores))
    part = part[np.isfinite(scores[part])]
    order = np.lexsort((part, -scores[part]))
    return part[order][:k]


def _unseen_negatives(rng: np.random.Generator, users: np.ndarray, seen_keys: np.ndarray,
                      n_items: int, rounds: int = 3) -> np.ndarray:
    """One uniformly drawn item per row of ``users``, redrawn (a few rounds) where the person has seen it.

    ``seen_keys`` are the sorted ``person * n_items + item`` keys of the observed pairs.
    """
    negatives = rng.integers(0, n_items, size=len(users))
    for _ in range(rounds):
        keys = users * n_items + negatives
        pos = np.searchsorted(seen_keys, keys)
        hit = (pos < len(seen_keys)) & (seen_keys[np.minimum(pos, len(seen_keys) - 1)] == keys)
        if not hit.any():
            break
        negatives[hit] = rng.integers(0, n_items, size=int(hit.sum()))
    return negatives


class _Indexed:
    """Shared state: id vocabularies, what each person has seen, item popularity."""

    def _index(self, person_ids: Sequence[str], item_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        persons = np.asarray(person_ids).astype(str)
        items = np.asarray(item_ids).astype(str)
        if persons.shape != items.shape or persons.ndim != 1:
            raise ValueError(f"person_ids and item_ids must be 1-D of equal length, got {persons.shape}"
                             f" and {items.shape}")
        if len(persons) == 0:
            raise ValueError("cannot fit a recommender on zero interactions")
        self.person_ids_, p_idx = np.unique(persons, return_inverse=True)
        self.item_ids_, i_idx = np.unique(items, return_inverse=True)
        self.person_index_ = {p: i for i, p in enumerate(self.person_ids_.tolist())}
        pairs = np.unique(np.stack([p_idx, i_idx], axis=1), axis=0)
        self.seen_indptr_ = np.searchsorted(pairs[:, 0], np.arange(len(self.person_ids_) + 1)).astype(np.int64)
        self.seen_indices_ = pairs[:, 1].astype(np.int64)
        self.popularity_ = np.bincount(pairs[:, 1], minlength=len(self.item_ids_)).astype(np.float64)
        return pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)

    def _seen(self, row: int) -> np.ndarray:
        return self.seen_indices_[self.seen_indptr_[row]:self.seen_indptr_[row + 1]]

    def _check_fitted(self) -> None:
        if getattr(self, "item_ids_", None) is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit() first")

    def _person_scores(self, row: int) -> np.ndarray:
        raise NotImplementedError

    def recommend(self, person_id: str, k: int = 10, exclude_seen: bool = True) -> list[tuple[str, float]]:
        """Top ``k`` items for ``person_id`` as ``[(item_id, score)]``, best first.

        Unknown persons get the most popular items (cold start).
        """
        self._check_fitted()
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k!r}")
        row = self.person_index_.get(str(person_id))
        if row is None:
            scores = self.popularity_.copy()
        else:
            scores = self._person_scores(row).astype(np.float64, copy=True)
            if exclude_seen:
                scores[self._seen(row)] = -np.inf
        top = _top_k(scores, int(k))
        return [(str(self.item_ids_[i]), float(scores[i])) for i in top]

    def knows(self, person_id: str) -> bool:
        self._check_fitted()
        return str(person_id) in self.person_index_


class PopularityRecommender(_Indexed):
    """Baseline: most-interacted items (by distinct persons), minus what the person has seen."""

    def __init__(self) -> None:
        pass

    def get_params(self) -> dict:
        return {}

    def fit(self, person_ids: Sequence[str], item_ids: Sequence[str]) -> PopularityRecommender:
        self._index(person_ids, item_ids)
        return self

    def _person_scores(self, row: int) -> np.ndarray:
        return self.popularity_


class ItemKNNRecommender(_Indexed):
    """Baseline: cosine item-item neighbourhoods on the binary person x item matrix.

    A person's score for item ``i`` is the sum of ``cos(i, j)`` over the items ``j`` they interacted with
    (Sarwar et al., 2001, "Item-based collaborative filtering recommendation algorithms").

    Parameters
    ----------
    n_neighbors : int or None, default=None
        Keep only each item's ``n_neighbors`` most similar items (None keeps all).

    Attributes
    ----------
    similarity_ : np.ndarray, shape (n_items, n_items)
        Cosine similarities with a zero diagonal (float32, dense: meant for catalogues of thousands).
    """

    def __init__(self, *, n_neighbors: int | None = None) -> None:
        self.n_neighbors = n_neighbors

    def get_params(self) -> dict:
        return {"n_neighbors": self.n_neighbors}

    def fit(self, person_ids: Sequence[str], item_ids: Sequence[str]) -> ItemKNNRecommender:
        from scipy import sparse

        if self.n_neighbors is not None and int(self.n_neighbors) < 1:
            raise ValueError(f"n_neighbors must be >= 1 or None, got {self.n_neighbors!r}")
        users, items = self._index(person_ids, item_ids)
        matrix = sparse.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)),
                                   shape=(len(self.person_ids_), len(self.item_ids_)))
        co = (matrix.T @ matrix).toarray().astype(np.float32)
        norms = np.sqrt(np.diag(co)).astype(np.float32)
        norms[norms == 0] = 1.0
        similarity = co / norms[:, None] / norms[None, :]
        np.fill_diagonal(similarity, 0.0)
        if self.n_neighbors is not None and int(self.n_neighbors) < len(similarity) - 1:
            cut = len(similarity) - int(self.n_neighbors)
            drop = np.argpartition(similarity, cut - 1, axis=1)[:, :cut]
            np.put_along_axis(similarity, drop, 0.0, axis=1)
        self.similarity_ = similarity
        return self

    def _person_scores(self, row: int) -> np.ndarray:
        return self.similarity_[:, self._seen(row)].sum(axis=1)


class MatrixFactorizationRecommender(_Indexed):
    """Implicit-feedback matrix factorisation trained with BPR.

    Parameters
    ----------
    n_factors : int, default=32
        Embedding size.
    epochs : int, default=20
        Passes over the distinct (person, item) pairs; each pair is matched with one sampled negative.
    learning_rate : float, default=0.02
        Adam step size.
    reg : float, default=1e-4
        L2 penalty on the embeddings touched by a batch.
    batch_size : int, default=2048
    loss : {"bpr", "softmax"}, default="bpr"
        ``bpr``: one sampled negative per positive pair. ``softmax``: cross-entropy of the positive item
        against ``n_negatives`` items drawn uniformly (shared across the batch), a sampled softmax.
    n_negatives : int, default=256
        Sampled negatives per batch for ``loss="softmax"``; at or above the catalogue size the softmax
        runs over every item (exact, no sampling).
    seed : int, default=0
        Seeds initialisation and negative sampling.

    Attributes
    ----------
    person_ids_, item_ids_ : np.ndarray of str
    user_factors_ : np.ndarray, shape (n_persons, n_factors)
    item_factors_ : np.ndarray, shape (n_items, n_factors)
    item_bias_ : np.ndarray, shape (n_items,)
    popularity_ : np.ndarray, shape (n_items,)
        Distinct persons per item, the cold-start fallback.
    loss_history_ : list[float]
        Mean BPR loss per epoch.
    """

    def __init__(
        self,
        *,
        n_factors: int = 32,
        epochs: int = 20,
        learning_rate: float = 0.02,
        reg: float = 1e-4,
        batch_size: int = 2048,
        loss: str = "bpr",
        n_negatives: int = 256,
        seed: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.batch_size = batch_size
        self.loss = loss
        self.n_negatives = n_negatives
        self.seed = seed

    def get_params(self) -> dict:
        return {
            "n_factors": self.n_factors, "epochs": self.epochs, "learning_rate": self.learning_rate,
            "reg": self.reg, "batch_size": self.batch_size, "loss": self.loss, "n_negatives": self.n_negatives,
            "seed": self.seed,
        }

    def _check_params(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("n_factors", "epochs", "batch_size", "n_negatives"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if float(self.learning_rate) <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if float(self.reg) < 0:
            raise ValueError(f"reg must be >= 0, got {self.reg!r}")

    def fit(self, person_ids: Sequence[str], item_ids: Sequence[str]) -> MatrixFactorizationRecommender:
        """Learn embeddings from implicit interactions (duplicates count once), shape (n_interactions,)."""
        import torch  # training-only dependency: predict paths stay numpy

        self._check_params()
        users, items = self._index(person_ids, item_ids)
        # small embedding ops gain nothing from intra-op threads, and on a busy machine oversubscribed
        # threads make training ~10x slower (measured on 2 cores): train on one thread, then restore
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._train(torch, users, items)
        finally:
            torch.set_num_threads(threads)
        return self

    def _train(self, torch, users: np.ndarray, items: np.ndarray) -> None:
        n_users, n_items = len(self.person_ids_), len(self.item_ids_)
        rng = np.random.default_rng(self.seed)
        generator = torch.Generator().manual_seed(int(self.seed))
        dim = int(self.n_factors)
        user_emb = torch.nn.Parameter(torch.randn(n_users, dim, generator=generator) * 0.1)
        item_emb = torch.nn.Parameter(torch.randn(n_items, dim, generator=generator) * 0.1)
        item_bias = torch.nn.Parameter(torch.zeros(n_items))
        optimizer = torch.optim.Adam([user_emb, item_emb, item_bias], lr=float(self.learning_rate))
        seen_keys = users * n_items + items  # sorted because pairs are sorted
        self.loss_history_ = []
        batch = int(self.batch_size)
        n_sampled = min(int(self.n_negatives), n_items)
        reg = float(self.reg)
        for _ in range(int(self.epochs)):
            order = rng.permutation(len(users))
            if self.loss == "bpr":
                negatives = _unseen_negatives(rng, users[order], seen_keys, n_items)
            total = 0.0
            for start in range(0, len(order), batch):
                sel = order[start:start + batch]
                u = torch.from_numpy(users[sel])
                i = torch.from_numpy(items[sel])
                pu, qi = user_emb[u], item_emb[i]
                if self.loss == "bpr":
                    j = torch.from_numpy(negatives[start:start + batch])
                    qj = item_emb[j]
                    diff = (pu * (qi - qj)).sum(dim=1) + item_bias[i] - item_bias[j]
                    loss = -torch.nn.functional.logsigmoid(diff).mean()
                    penalty = pu.pow(2).sum() + qi.pow(2).sum() + qj.pow(2).sum()
                elif n_sampled >= n_items:  # full softmax over the catalogue: no sampling needed
                    logits = pu @ item_emb.T + item_bias
                    loss = torch.nn.functional.cross_entropy(logits, i)
                    penalty = pu.pow(2).sum() + qi.pow(2).sum() + item_emb.pow(2).sum() * len(sel) / n_items
                else:  # sampled softmax: the positive against shared uniform negatives (accidental hits masked)
                    j = torch.from_numpy(rng.choice(n_items, n_sampled, replace=False))
                    qj = item_emb[j]
                    positive = (pu * qi).sum(dim=1, keepdim=True) + item_bias[i].unsqueeze(1)
                    sampled = pu @ qj.T + item_bias[j]
                    sampled = sampled.masked_fill(i.unsqueeze(1) == j.unsqueeze(0), float("-inf"))
                    logits = torch.cat([positive, sampled], dim=1)
                    loss = -torch.log_softmax(logits, dim=1)[:, 0].mean()
                    penalty = pu.pow(2).sum() + qi.pow(2).sum() + qj.pow(2).sum() * len(sel) / n_sampled
                loss = loss + reg * penalty / len(sel)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(sel)
            self.loss_history_.append(total / len(order))
        self.user_factors_ = user_emb.detach().numpy().astype(np.float32).copy()
        self.item_factors_ = item_emb.detach().numpy().astype(np.float32).copy()
        self.item_bias_ = item_bias.detach().numpy().astype(np.float32).copy()

    def _person_scores(self, row: int) -> np.ndarray:
        return self.item_factors_ @ self.user_factors_[row] + self.item_bias_

    # -- persistence (numpy only) -----------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        params = np.array([self.n_factors, self.epochs, self.learning_rate, self.reg, self.batch_size,
                           self.seed, LOSSES.index(self.loss), self.n_negatives], dtype=np.float64)
        return {
            "params": params, "person_ids": self.person_ids_.astype(str), "item_ids": self.item_ids_.astype(str),
            "user_factors": self.user_factors_, "item_factors": self.item_factors_, "item_bias": self.item_bias_,
            "popularity": self.popularity_, "seen_indptr": self.seen_indptr_, "seen_indices": self.seen_indices_,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> MatrixFactorizationRecommender:
        n_factors, epochs, lr, reg, batch, seed, *rest = arrays["params"].tolist()
        loss, n_negatives = (LOSSES[int(rest[0])], int(rest[1])) if rest else ("bpr", 256)
        model = cls(n_factors=int(n_factors), epochs=int(epochs), learning_rate=lr, reg=reg,
                    batch_size=int(batch), loss=loss, n_negatives=n_negatives, seed=int(seed))
        model.person_ids_ = np.asarray(arrays["person_ids"]).astype(str)
        model.item_ids_ = np.asarray(arrays["item_ids"]).astype(str)
        model.person_index_ = {p: i for i, p in enumerate(model.person_ids_.tolist())}
        for name in ("user_factors", "item_factors", "item_bias", "popularity", "seen_indptr", "seen_indices"):
            setattr(model, name + "_", np.asarray(arrays[name]))
        return model

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / ARRAYS_FILE, **self.to_arrays())
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> MatrixFactorizationRecommender:
        with np.load(Path(directory) / ARRAYS_FILE, allow_pickle=False) as data:
            return cls.from_arrays({k: data[k] for k in data.files})
