"""Prior wrappers used by the scene app: chunked evaluation and the dihedral ensemble across samples."""

from __future__ import annotations

import torch

from geodiff.priors import load
from geodiff.priors.chunked import ChunkedPrior
from geodiff.solvers import SamplerConfig, SpeckleModel, sar_dps
from geodiff.solvers.ensemble import DihedralEnsemble, transforms_for

C = SamplerConfig.defaults


def test_chunked_prior_equals_one_batch() -> None:
    p = load("tiny")
    x = torch.randn(7, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    t = torch.arange(7) * 100
    assert torch.allclose(ChunkedPrior(p, 3).eps(x, t), p.eps(x, t), atol=1e-6)
    assert torch.allclose(
        ChunkedPrior(p, 2).eps(x, torch.tensor(300)), p.eps(x, torch.tensor(300)), atol=1e-6
    )


def test_dihedral_ensemble_maps_each_sample_to_its_orientation_and_back() -> None:
    p = load("tiny")
    s = 4
    x = torch.randn(2 * s, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    t = torch.full((2 * s,), 250)
    out = DihedralEnsemble(p, s).eps(x, t)
    ref = p.eps(x, t)
    assert torch.allclose(out[0::s], ref[0::s], atol=1e-6)  # sample 0: identity
    for k in range(1, s):  # sample k: T_k^-1 eps(T_k x)
        rot, flip = transforms_for(32, 32)[k]
        xk = torch.rot90(x[k::s], rot, (-2, -1))
        xk = xk.flip(-1) if flip else xk
        e = p.eps(xk, t[k::s])
        e = e.flip(-1) if flip else e
        assert torch.allclose(out[k::s], torch.rot90(e, -rot, (-2, -1)), atol=1e-6)
    assert not torch.allclose(out[1::s], ref[1::s], atol=1e-4)  # the network is not exactly equivariant
    # non-square tiles keep their shape (no 90-degree turns)
    assert DihedralEnsemble(p, 8).eps(torch.randn(8, 1, 32, 48), torch.tensor(100)).shape == (8, 1, 32, 48)


def test_ensemble_changes_nothing_for_one_sample_and_keeps_the_nfe() -> None:
    p = load("tiny")
    y = 0.1 * torch.distributions.Gamma(4.0, 4.0).sample((1, 1, 32, 32))
    speckle = SpeckleModel(4.0, 0.1)
    a = sar_dps(y, p, speckle, C("sar_dps", steps=2, samples=1), seeds=[3])
    b = sar_dps(y, p, speckle, C("sar_dps", steps=2, samples=1, ensemble=True), seeds=[3])
    assert torch.equal(a.mean, b.mean)
    c = sar_dps(y, p, speckle, C("sar_dps", steps=2, samples=4, ensemble=True), seeds=[3])
    assert c.nfe == a.nfe and torch.isfinite(c.mean).all() and c.std is not None


def test_wrappers_delegate_attributes_moves_and_pickle() -> None:
    import pickle

    p = load("tiny")
    for w in (ChunkedPrior(p, 2), DihedralEnsemble(p, 2)):
        assert w.amplitude_median == p.amplitude_median and w.stride == p.stride and w.domain == "amplitude"
        assert w.to("cpu") is w and w.alphas_cumprod is p.alphas_cumprod
        back = pickle.loads(pickle.dumps(w))
        x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(back.eps(x, torch.tensor(50)), w.eps(x, torch.tensor(50)))
