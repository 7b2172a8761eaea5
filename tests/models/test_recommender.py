import sys

import numpy as np
import pytest

from models import MatrixFactorizationRecommender, NotFittedError, PopularityRecommender
from models.recommender import ItemKNNRecommender


def _latent_world(seed: int = 0, n_persons: int = 400, n_items: int = 120, per_person: int = 12):
    """Persons belong to one of 4 taste clusters; each cluster likes its own 30 items (plus popular noise)."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 4, n_persons)
    item_cluster = np.arange(n_items) % 4
    popular = rng.random(n_items) ** 3
    train, test = [], {}
    for p in range(n_persons):
        liked = np.flatnonzero(item_cluster == cluster[p])
        weights = popular[liked] + 0.2
        chosen = rng.choice(liked, per_person + 3, replace=False, p=weights / weights.sum())
        noise = rng.choice(n_items, 2, replace=False, p=popular / popular.sum())
        for i in list(chosen[:per_person]) + list(noise):
            train.append((f"P{p}", f"I{i}"))
        test[f"P{p}"] = {f"I{i}" for i in chosen[per_person:]} - {f"I{i}" for i in noise}
    persons, items = map(np.array, zip(*train, strict=True))
    return persons, items, test


def _recall(model, test, k=10):
    scores = []
    for person, relevant in test.items():
        if relevant:
            top = {item for item, _ in model.recommend(person, k)}
            scores.append(len(top & relevant) / len(relevant))
    return float(np.mean(scores))


def test_mf_recovers_planted_structure_better_than_popularity():
    persons, items, test = _latent_world()
    mf = MatrixFactorizationRecommender(n_factors=16, epochs=25, learning_rate=0.03, seed=0).fit(persons, items)
    pop = PopularityRecommender().fit(persons, items)
    mf_recall, pop_recall = _recall(mf, test), _recall(pop, test)
    assert mf_recall > pop_recall + 0.1, (mf_recall, pop_recall)
    assert mf.loss_history_[-1] < mf.loss_history_[0]


def test_softmax_loss_and_item_knn_also_beat_popularity():
    persons, items, test = _latent_world()
    pop_recall = _recall(PopularityRecommender().fit(persons, items), test)
    softmax = MatrixFactorizationRecommender(n_factors=16, epochs=15, learning_rate=0.03, loss="softmax",
                                             n_negatives=32, seed=0).fit(persons, items)
    knn = ItemKNNRecommender().fit(persons, items)
    assert _recall(softmax, test) > pop_recall + 0.1
    assert _recall(knn, test) > pop_recall + 0.1
    assert softmax.loss_history_[-1] < softmax.loss_history_[0]
    few = ItemKNNRecommender(n_neighbors=5).fit(persons, items)
    assert ((few.similarity_ > 0).sum(axis=1) <= 5).all()
    np.testing.assert_allclose(few.similarity_.max(axis=1), knn.similarity_.max(axis=1), rtol=1e-6)
    loaded = MatrixFactorizationRecommender.from_arrays(softmax.to_arrays())
    assert loaded.get_params() == softmax.get_params() and loaded.recommend("P1", 5) == softmax.recommend("P1", 5)


def test_item_knn_scores_are_sums_of_cosines_to_seen_items():
    knn = ItemKNNRecommender().fit(["a", "a", "b", "b", "c"], ["x", "y", "x", "z", "z"])
    # cos(x, y) = 1/sqrt(2*1), cos(x, z) = 1/sqrt(2*2), cos(y, z) = 0; person "c" saw z only
    assert knn.recommend("c", 2) == [("x", pytest.approx(0.5)), ("y", 0.0)]
    assert knn.recommend("a", 1) == [("z", pytest.approx(0.5))]


def test_recommend_excludes_seen_sorted_and_unknown_person_gets_popularity():
    persons, items, _ = _latent_world(seed=1, n_persons=100)
    mf = MatrixFactorizationRecommender(n_factors=8, epochs=3, seed=1).fit(persons, items)
    recs = mf.recommend("P0", 10)
    seen = set(items[persons == "P0"])
    assert len(recs) == 10 and not seen & {i for i, _ in recs}
    scores = [s for _, s in recs]
    assert scores == sorted(scores, reverse=True)
    with_seen = {i for i, _ in mf.recommend("P0", 200, exclude_seen=False)}
    assert seen <= with_seen
    cold = mf.recommend("nobody", 5)
    pop = PopularityRecommender().fit(persons, items).recommend("nobody", 5)
    assert [i for i, _ in cold] == [i for i, _ in pop]
    assert len(mf.recommend("P0", 10_000)) == len(mf.item_ids_) - len(seen)


def test_fit_is_seeded():
    persons, items, _ = _latent_world(seed=2, n_persons=60)
    a = MatrixFactorizationRecommender(n_factors=4, epochs=2, seed=5).fit(persons, items)
    b = MatrixFactorizationRecommender(n_factors=4, epochs=2, seed=5).fit(persons, items)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


def test_numpy_round_trip_needs_no_torch(tmp_path):
    persons, items, _ = _latent_world(seed=3, n_persons=50)
    mf = MatrixFactorizationRecommender(n_factors=4, epochs=2).fit(persons, items)
    loaded = MatrixFactorizationRecommender.load(mf.save(tmp_path / "r"))
    assert loaded.recommend("P3", 7) == mf.recommend("P3", 7)
    assert loaded.get_params() == mf.get_params()
    code = "import sys; from models.recommender import MatrixFactorizationRecommender as M; " \
           f"M.load({str(tmp_path / 'r')!r}).recommend('P3', 5); assert 'torch' not in sys.modules"
    import subprocess
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(tmp_path))


@pytest.mark.parametrize(
    ("params", "message"),
    [({"n_factors": 0}, "n_factors"), ({"epochs": 0}, "epochs"), ({"learning_rate": 0}, "learning_rate"),
     ({"loss": "hinge"}, "loss"), ({"n_negatives": 0}, "n_negatives")],
)
def test_bad_params_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        MatrixFactorizationRecommender(**params).fit(["a"], ["b"])


def test_unfitted_and_bad_k():
    with pytest.raises(NotFittedError):
        PopularityRecommender().recommend("x", 3)
    pop = PopularityRecommender().fit(["a", "b"], ["i", "j"])
    with pytest.raises(ValueError, match="k"):
        pop.recommend("a", 0)
    with pytest.raises(ValueError, match="zero"):
        PopularityRecommender().fit([], [])
    with pytest.raises(ValueError, match="n_neighbors"):
        ItemKNNRecommender(n_neighbors=0).fit(["a"], ["b"])
