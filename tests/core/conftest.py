"""Fixtures of the core tests: float64 by default for exact comparisons, one torch thread for training."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def float64():
    """Double precision for exact comparisons, restored afterwards (other tests keep float32)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine two spinning threads mostly wait for each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
