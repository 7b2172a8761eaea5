"""Fixtures of the feature tests."""

from __future__ import annotations

import pytest
from feature_rows import SALT


@pytest.fixture
def salt() -> bytes:
    return SALT
