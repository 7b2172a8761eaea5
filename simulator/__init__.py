"""The synthetic omnichannel world: persons with latent traits, their identifiers, events and ground truth.

Imports numpy and pandas only; the product never reads the truth frames.
"""

from simulator.campaigns import conversion_probability
from simulator.catalog import ACTIONS, CATEGORIES, CHANNELS, CONSENT_CHANNELS, actions_on
from simulator.config import WorldConfig
from simulator.population import Population
from simulator.world import TRUTH_FRAMES, World, iter_chunks, read_truth, simulate, stream_world, write_world

__all__ = [
    "ACTIONS", "CATEGORIES", "CHANNELS", "CONSENT_CHANNELS", "Population", "TRUTH_FRAMES", "World", "WorldConfig",
    "actions_on", "conversion_probability", "iter_chunks", "read_truth", "simulate", "stream_world", "write_world",
]
