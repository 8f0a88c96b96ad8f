"""Contracts of the core's building blocks, over every implementation at once.

* every likelihood's ``grad`` equals autograd of its ``nll`` (the base class's default) at the same x;
* every linear operator's adjoint is exact: <A x, y> = <x, A^T y>.
"""

from __future__ import annotations

import pytest
import torch

from geodiff.likelihoods import (
    GammaIntensity,
    GammaLogIntensity,
    Gaussian,
    GaussianLogIntensity,
    Likelihood,
    Poisson,
    SpeckleModel,
)
from geodiff.operators import Blur, Downsample, Identity, LinearOperator, Mask

G = torch.Generator().manual_seed(0)
X = torch.rand(2, 1, 12, 12, generator=G, dtype=torch.float64) + 0.2  # positive: intensities and rates
Y = X * torch.distributions.Gamma(torch.tensor(2.0, dtype=torch.float64), 2.0).sample(X.shape)

OPERATORS: dict[str, LinearOperator] = {
    "identity": Identity(),
    "mask": Mask(torch.rand(1, 1, 12, 12, generator=G) > 0.5),
    "downsample3": Downsample(3),
    "blur": Blur(torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=torch.float64) / 16),
}


def _likelihoods() -> dict[str, Likelihood]:
    liks: dict[str, Likelihood] = {
        "gamma_intensity_L1": GammaIntensity(Y, 1.0),
        "gamma_intensity_L4.4": GammaIntensity(Y, 4.4),
        "gamma_log": GammaLogIntensity(Y, 2.0),
        "gaussian_log": GaussianLogIntensity(Y, 3.0),
        "poisson": Poisson(torch.poisson(5 * X, generator=G), gain=5.0),
        "speckle_model_log": SpeckleModel(2.0, form="log").likelihood(Y),
    }
    for name, op in OPERATORS.items():
        liks[f"gaussian_{name}"] = Gaussian(op(Y), 0.3, op)
    return liks


LIKELIHOODS = _likelihoods()


class _NllOnly(Likelihood):
    """A likelihood that defines only its nll: grad comes from the base class (autograd)."""

    def __init__(self, y: torch.Tensor) -> None:
        self.y = y

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.y) ** 4).flatten(1).sum(1)


@pytest.mark.parametrize("name", LIKELIHOODS)
def test_likelihood_grad_equals_autograd_of_nll(name: str) -> None:
    lik = LIKELIHOODS[name]
    x = X if "log" not in name else torch.log(X)  # log forms take u = log x
    auto = Likelihood.grad(lik, x)
    torch.testing.assert_close(lik.grad(x), auto, rtol=1e-9, atol=1e-12)
    assert lik.nll(x).shape == (x.shape[0],)
    assert lik.fisher(x).shape == x.shape and bool((lik.fisher(x) >= 0).all())


def test_default_grad_is_autograd_and_keeps_no_graph() -> None:
    lik = _NllOnly(Y)
    g = lik.grad(X)
    torch.testing.assert_close(g, 4 * (X - Y) ** 3)
    assert not g.requires_grad


@pytest.mark.parametrize("name", OPERATORS)
def test_operator_adjoint(name: str) -> None:
    op = OPERATORS[name]
    x = torch.randn(3, 1, 12, 12, generator=G, dtype=torch.float64)
    y = torch.randn(op(x).shape, generator=G, dtype=torch.float64)
    torch.testing.assert_close((op(x) * y).sum(), (x * op.T(y)).sum(), rtol=1e-12, atol=1e-12)
