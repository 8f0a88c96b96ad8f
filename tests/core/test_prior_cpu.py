"""Network execution on the CPU: the in-place forward, the allocator tuning, the thread rule and the
opt-in bfloat16 autocast keep the prior's output (bench/cpu_profile.py measures what they gain)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import geodiff.device as device_module
import geodiff.priors.unet as unet_module
from geodiff.device import (
    ALLOCATOR_ENV,
    PRECISION_ENV,
    THREADS_ENV,
    configure_cpu,
    cpu_precision,
    cpu_threads,
    tune_cpu_allocator,
)
from geodiff.errors import InvalidSettingError
from geodiff.priors import load
from geodiff.priors.prior import UNetPrior
from geodiff.priors.unet import UNet, UNetConfig


def _random_prior(attention: bool = True) -> UNetPrior:
    """A small UNet with random (non-zero) weights everywhere, attention at the bottleneck."""
    torch.manual_seed(0)
    net = UNet(UNetConfig(width=8, channel_mult=[1, 2, 2], num_res_blocks=1, attention=attention))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.2 * torch.randn_like(p))
    cfg = {"name": "rand", "schedule": {"name": "cosine", "T": 1000}, "domain": "amplitude",
           "channels": 1, "prediction": "eps"}  # fmt: skip
    return UNetPrior(net, cfg)


def _x(b: int = 3, s: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, 1, s, s, generator=g), torch.tensor([10, 400, 999][:b])


@pytest.mark.parametrize("make", [lambda: _random_prior(), lambda: load("tiny")], ids=["random", "tiny"])
def test_inplace_forward_gives_the_bits_of_the_graph_forward(make, monkeypatch) -> None:
    prior = make()
    x, t = _x()
    with torch.no_grad():
        fast = prior.eps(x, t)
        monkeypatch.setattr(unet_module, "_inplace", lambda: False)
        ref = prior.eps(x, t)
    assert torch.equal(fast, ref)
    with torch.enable_grad():  # with a graph the forward keeps its temporaries: same values again
        monkeypatch.undo()
        graph = prior.eps(x, t)
    assert torch.equal(graph.detach(), ref)


def test_the_dps_jacobian_still_flows_through_the_network() -> None:
    prior = _random_prior()
    x, t = _x(2)
    xg = x.clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(prior.eps(xg, t).square().sum(), xg)
    # central finite difference along a random direction (float64 copy of the network)
    net64 = prior.net.double()
    d = torch.randn_like(x, dtype=torch.float64)
    h = 1e-4
    with torch.no_grad():
        fp = net64(x.double() + h * d, t).square().sum()
        fm = net64(x.double() - h * d, t).square().sum()
    assert float((g.double() * d).sum()) == pytest.approx(float(fp - fm) / (2 * h), rel=1e-3)


def test_channels_last_and_contiguous_layouts_agree() -> None:
    prior = _random_prior()
    x, t = _x()
    with torch.no_grad():
        cl = prior.net(x.contiguous(memory_format=torch.channels_last), t)
        prior.net.to(memory_format=torch.contiguous_format)
        nchw = prior.net(x.contiguous(), t)
    assert torch.allclose(cl, nchw, rtol=0, atol=1e-5 * float(nchw.abs().max()))


@pytest.mark.slow
def test_allocator_tuning_keeps_the_bits_and_can_be_switched_off() -> None:
    assert tune_cpu_allocator(env={ALLOCATOR_ENV: "0"}) is False
    code = (
        "import torch, geodiff.device as d; from geodiff.priors import load; torch.set_num_threads(1); "
        "x = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(0)); "
        "print(load('tiny').eps(x, torch.tensor(300)).double().sum().item(), d._allocator_done)"
    )
    outs = {}
    for flag in ("0", "1"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("GEODIFF_")}
        env[ALLOCATOR_ENV] = flag
        cmd = [sys.executable, "-c", code]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        outs[flag] = res.stdout.split()
    assert outs["0"][0] == outs["1"][0]  # same sum to the last printed digit
    assert outs["0"][1] == "None"  # switched off: never tried
    if sys.platform.startswith("linux"):
        assert outs["1"][1] in ("True", "False")  # tried (False only off glibc)


def test_thread_rule_cores_over_workers_with_an_override() -> None:
    assert cpu_threads(1, cores=8, env={}) == 8
    assert cpu_threads(3, cores=8, env={}) == 2
    assert cpu_threads(16, cores=8, env={}) == 1  # never below one thread
    assert cpu_threads(4, cores=8, env={THREADS_ENV: "3"}) == 3  # the override wins
    assert cpu_threads(1, env={}) >= 1  # the cores this process may use
    for bad in ("0", "-2", "two"):
        with pytest.raises(InvalidSettingError, match=THREADS_ENV):
            cpu_threads(1, cores=8, env={THREADS_ENV: bad})
    with pytest.raises(InvalidSettingError, match="workers"):
        cpu_threads(0, cores=8, env={})


def test_prior_applies_the_thread_override(monkeypatch) -> None:
    n = torch.get_num_threads()
    try:
        monkeypatch.setenv(THREADS_ENV, "1")
        torch.set_num_threads(2)
        with torch.no_grad():
            load("tiny").eps(*_x(1))
        assert torch.get_num_threads() == 1
        monkeypatch.delenv(THREADS_ENV)
        assert configure_cpu(workers=max(1, len(os.sched_getaffinity(0)))) == 1
    finally:
        torch.set_num_threads(n)


def test_bf16_autocast_is_opt_in_and_close(monkeypatch, caplog) -> None:
    assert cpu_precision(env={}) is None and cpu_precision(env={PRECISION_ENV: "fp32"}) is None
    assert cpu_precision(env={PRECISION_ENV: "BF16"}) is torch.bfloat16
    with pytest.raises(InvalidSettingError, match="fp32 or bf16"):
        cpu_precision(env={PRECISION_ENV: "fp16"})
    monkeypatch.setattr(device_module, "_native_bf16", lambda: False)
    with caplog.at_level("WARNING", logger="geodiff.device"):
        assert cpu_precision(env={PRECISION_ENV: "bf16"}) is torch.bfloat16  # asked for: still used
    assert "without native bfloat16" in caplog.text
    monkeypatch.undo()
    prior = _random_prior()
    x, t = _x()
    with torch.no_grad():
        ref = prior.eps(x, t)
        monkeypatch.setenv(PRECISION_ENV, "bf16")
        low = prior.eps(x, t)
    assert low.dtype == torch.float32 and not torch.equal(low, ref)
    rel = float((low - ref).square().mean().sqrt() / ref.square().mean().sqrt())
    assert rel < 2e-2  # bfloat16 has 8 mantissa bits; bench/cpu_profile.py measures the PSNR effect
