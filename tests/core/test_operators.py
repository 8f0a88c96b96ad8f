"""Linear operators: pseudo-inverses (A A^+ A = A), Gram diagonals, FFT blur, validation.

(Exact adjoints of every operator: tests/core/test_contracts.py.)
"""

from __future__ import annotations

import pytest
import torch

from geodiff.operators import Blur, Downsample, Identity, Mask

pytestmark = pytest.mark.usefixtures("float64")


g = torch.Generator().manual_seed(0)
OPS = {
    "identity": Identity(),
    "mask": Mask(torch.rand(1, 1, 12, 12, generator=g) > 0.4),
    "down2": Downsample(2),
    "down3": Downsample(3),
    "blur": Blur(torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16),
    "blur_motion": Blur(torch.eye(5) / 5),
}


@pytest.mark.parametrize("name", OPS)
def test_pseudo_inverse(name):
    op = OPS[name]
    x = torch.randn(3, 1, 12, 12, generator=g)
    torch.testing.assert_close(op(op.pinv(op(x))), op(x), rtol=1e-9, atol=1e-9)
    # A^+ A is a projection: applying it twice changes nothing
    p = op.pinv(op(x))
    torch.testing.assert_close(op.pinv(op(p)), p, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", OPS)
def test_gram_diag(name):
    op = OPS[name]
    x = torch.zeros(1, 1, 12, 12)
    x[0, 0, 5, 6] = 1
    torch.testing.assert_close(op.T(op(x))[0, 0, 5, 6], op.gram_diag(x)[0, 0, 5, 6])


def test_blur_matches_direct_convolution():
    k = torch.rand(3, 3, generator=g)
    x = torch.randn(1, 1, 9, 9, generator=g)
    ref = torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (1, 1, 1, 1), mode="circular"), k.flip(0, 1)[None, None]
    )
    torch.testing.assert_close(Blur(k)(x), ref)


def test_bad_operator_arguments():
    with pytest.raises(ValueError, match="odd"):
        Blur(torch.ones(2, 2))
    with pytest.raises(ValueError, match="factor"):
        Downsample(0)
    with pytest.raises(ValueError, match="multiple"):
        Downsample(5)(torch.ones(1, 1, 12, 12))
    with pytest.raises(ValueError, match="mask"):
        Mask(torch.full((4, 4), 0.5))
