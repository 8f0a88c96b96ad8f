"""bench/fusion_sar_selection.py: the CFAR test of SAR structure against Lee-filtered speckle."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import fusion_sar_selection as sel  # noqa: E402

LOOKS = 4.0


def _amplitude(reflectivity: np.ndarray, seed: int) -> torch.Tensor:
    """Lee-filtered (7 x 7) amplitude of ``reflectivity`` under white gamma speckle of LOOKS looks."""
    speckle = np.random.default_rng(seed).gamma(LOOKS, 1.0 / LOOKS, size=reflectivity.shape)
    amp = np.sqrt(sel.lee(reflectivity * speckle, looks=LOOKS, window=7))
    return torch.from_numpy(amp / amp.max()).float()[None, None]


def _pair(b: torch.Tensor) -> sel.Pair:
    a = np.zeros(b.shape[-2:])
    return sel.Pair("synthetic", "x", a, b[0, 0].double().numpy(), LOOKS, 0.0)


def test_cfar_flags_about_pfa_of_pure_speckle():
    b = _amplitude(np.ones((256, 256)), seed=11)  # another draw than the threshold's
    frac = float(sel.significant("energy", 1e-2, b, _pair(b))[0, 0, 8:-8, 8:-8].mean())
    assert 0.002 < frac < 0.03


def test_cfar_flags_a_bright_line_and_is_scale_free():
    r = np.ones((128, 128))
    r[:, 64] = 16.0  # a strong scatterer (a pole row, a shore) in flat speckle
    b = _amplitude(r, seed=3)
    m = sel.significant("energy", 1e-3, b, _pair(b))[0, 0]
    assert float(m[8:-8, 62:67].mean()) > 0.9
    assert float(m[8:-8, :40].mean()) < 0.01
    # another stretch of B (by a power of two: exact in float) must flag the same pixels
    m2 = sel.significant("energy", 1e-3, 0.25 * b, _pair(0.25 * b))[0, 0]
    assert torch.equal(m, m2)
