import numpy as np
import pandas as pd
import pytest

from models import ThompsonBudgetAllocator, UniformAllocator, replay_evaluate

CHANNELS = ("sms", "email", "app")
RATES = {"sms": 0.02, "email": 0.05, "app": 0.15}


def _uniform_log(n: int, seed: int, value: float = 20.0, cost: float = 1.0) -> pd.DataFrame:
    """Touches logged by a uniform policy (the setting in which replay is unbiased)."""
    rng = np.random.default_rng(seed)
    channel = rng.choice(CHANNELS, n)
    converted = rng.random(n) < np.array([RATES[c] for c in channel])
    return pd.DataFrame({
        "ts": pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC"),
        "channel": channel,
        "reward": np.where(converted, value, 0.0) - cost,
        "cost": cost,
    })


def test_shares_concentrate_on_best_arm_and_sum_to_one():
    log = _uniform_log(6000, seed=0)
    bandit = ThompsonBudgetAllocator(channels=CHANNELS).fit(log)
    shares = bandit.budget_shares(n_samples=5000, seed=1)
    assert set(shares) == set(CHANNELS)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["app"] > 0.95
    assert bandit.budget_shares(5000, seed=1) == shares  # seeded
    rewards = bandit.expected_rewards()
    assert rewards["app"] == pytest.approx(0.15 * 20 - 1, abs=0.4)


def test_prior_shares_are_spread_and_uniform_baseline_is_flat():
    prior = ThompsonBudgetAllocator(channels=CHANNELS).budget_shares(3000, seed=0)
    assert all(0.2 < s < 0.47 for s in prior.values())
    assert UniformAllocator(channels=CHANNELS).budget_shares() == {c: pytest.approx(1 / 3) for c in CHANNELS}


def test_update_params_matches_batch_fit():
    log = _uniform_log(500, seed=2)
    online = ThompsonBudgetAllocator(channels=CHANNELS).initialize()
    for row in log.itertuples():
        online.update_params(row.channel, row.reward, row.cost)
    batch = ThompsonBudgetAllocator(channels=CHANNELS).fit(log)
    np.testing.assert_allclose(online.alpha_, batch.alpha_)
    np.testing.assert_allclose(online.beta_, batch.beta_)
    np.testing.assert_allclose(online.value_sum_, batch.value_sum_)


def test_cost_lowers_a_channels_share():
    """A channel with the best conversion rate loses when its cost per touch eats the value."""
    log = _uniform_log(6000, seed=3)
    log.loc[log["channel"] == "app", "cost"] = 4.0
    log.loc[log["channel"] == "app", "reward"] -= 3.0
    shares = ThompsonBudgetAllocator(channels=CHANNELS).fit(log).budget_shares(4000, seed=0)
    assert shares["app"] < 0.05


def test_replay_of_learning_policy_beats_uniform():
    log = _uniform_log(9000, seed=4)
    thompson = replay_evaluate(ThompsonBudgetAllocator(channels=CHANNELS), log, seed=0)
    uniform = replay_evaluate(UniformAllocator(channels=CHANNELS), log, seed=0)
    assert thompson > uniform + 0.5, (thompson, uniform)
    # uniform's replay value estimates the logged mean reward
    assert uniform == pytest.approx(log["reward"].mean(), abs=0.4)


def test_select_action_and_round_trip(tmp_path):
    bandit = ThompsonBudgetAllocator(channels=CHANNELS).fit(_uniform_log(3000, seed=5))
    rng = np.random.default_rng(0)
    picks = [bandit.select_action(rng) for _ in range(200)]
    assert picks.count("app") > 180
    loaded = ThompsonBudgetAllocator.load(bandit.save(tmp_path / "b"))
    assert loaded.budget_shares(2000, 3) == bandit.budget_shares(2000, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": ()}, "channels"),
        ({"channels": ("a", "a")}, "unique"),
        ({"channels": ("a",), "prior_alpha": 0}, "prior_alpha"),
    ],
)
def test_bad_params_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ThompsonBudgetAllocator(**kwargs).initialize()


def test_bad_logs_and_actions():
    bandit = ThompsonBudgetAllocator(channels=CHANNELS)
    with pytest.raises(ValueError, match="reward"):
        bandit.fit(pd.DataFrame({"channel": ["sms"]}))
    with pytest.raises(ValueError, match="ts"):
        replay_evaluate(bandit, pd.DataFrame({"channel": ["sms"], "reward": [1.0]}))
    with pytest.raises(ValueError, match="pos"):
        bandit.update_params("pos", 1.0)
