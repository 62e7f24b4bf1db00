"""Fixtures for the evaluation tests."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the eval_synth helper module


@pytest.fixture(scope="session")
def pairs():
    from eval_synth import make_pairs

    return make_pairs()
