"""A trained UNet wrapped as a DiffusionPrior (see base.py): schedule + epsilon predictor."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from geodiff.device import THREADS_ENV, cpu_precision, cpu_threads, gpu_precision, tune_cpu_allocator
from geodiff.errors import InputError, InvalidSettingError
from geodiff.priors.schedule import abar_at, make_schedule, to_eps
from geodiff.priors.unet import UNet, UNetConfig
from geodiff.priors.weights_io import load_json, load_state_into, load_tensors

SUPPORTED_FORMAT = 1


class UNetPrior:
    """Implements the DiffusionPrior protocol for models exported by geodiff.priors.train."""

    def __init__(self, net: UNet, config: dict[str, Any], path: str | None = None) -> None:
        # channels-last convolutions are ~10 % faster on CPU (and the usual layout on GPUs)
        self.net = net.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        self.config = config
        self.path = path
        self.name = config.get("name", "prior")
        sched = config["schedule"]
        self.alphas_cumprod = make_schedule(sched["name"], int(sched["T"]))
        self.domain = config["domain"]
        self.channels = int(config["channels"])
        self.stride = int(net.stride)
        self.prediction = config["prediction"]
        self.amplitude_median = config.get("amplitude_median")
        self.tile = config.get("tile")

    @property
    def T(self) -> int:
        """Number of training timesteps T."""
        return int(self.alphas_cumprod.shape[0])

    @property
    def device(self) -> torch.device:
        """The device of the network's weights."""
        return next(self.net.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the network's weights (float32 when loaded)."""
        return next(self.net.parameters()).dtype

    def eps(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise for x_t (B, C, H, W) at integer timesteps t (B,) or a scalar.

        On the CPU (see :mod:`geodiff.device`): the allocator tuning once per process (same bits),
        ``GEODIFF_THREADS`` when set, and the opt-in bfloat16 autocast of ``GEODIFF_CPU_PRECISION=bf16``;
        float32 otherwise. On accelerators the autocast dtype of :func:`geodiff.device.gpu_precision`.
        Raises InputError (ValueError) for a batch of the wrong shape,
        InvalidSettingError for timesteps outside [0, T-1].
        """
        if x_t.ndim != 4 or x_t.shape[1] != self.channels:
            raise InputError(
                f"expected a batch (B, {self.channels}, H, W) for prior {self.name!r}, got {tuple(x_t.shape)}"
            )
        h, w = x_t.shape[-2:]
        if h % self.stride or w % self.stride:
            raise InputError(
                f"tile size {h}x{w} is not a multiple of prior {self.name!r}'s stride {self.stride}; "
                f"pad or crop tiles to a multiple of {self.stride}"
            )
        t = torch.as_tensor(t, device=x_t.device).long().reshape(-1)
        if t.numel() == 1 and x_t.shape[0] > 1:
            t = t.expand(x_t.shape[0])
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.T):
            raise InvalidSettingError(
                f"timesteps must lie in [0, {self.T - 1}]; got {int(t.min())}..{int(t.max())}"
            )
        x = x_t.to(self.dtype).contiguous(memory_format=torch.channels_last)
        amp = _prepare_cpu() if x.device.type == "cpu" else gpu_precision()
        if amp is not None:
            with torch.autocast(x.device.type, dtype=amp):
                out = self.net(x, t).to(x_t.dtype)
        else:
            out = self.net(x, t).to(x_t.dtype)
        abar = None if self.prediction == "eps" else abar_at(self.alphas_cumprod, t, x_t)
        return to_eps(self.prediction, out, x_t, abar)

    __call__ = eps

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> UNetPrior:
        """Move the network (channels-last) and the schedule; returns the prior."""
        self.net.to(device=device, dtype=dtype, memory_format=torch.channels_last)
        self.alphas_cumprod = self.alphas_cumprod.to(device)
        return self

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.net.parameters())
        return f"UNetPrior(name={self.name!r}, domain={self.domain!r}, params={n}, stride={self.stride})"


def _prepare_cpu() -> torch.dtype | None:
    """Once per process the allocator tuning; at each call ``GEODIFF_THREADS`` (when set) and the CPU
    autocast dtype (None for float32). See :mod:`geodiff.device`."""
    tune_cpu_allocator()
    if os.environ.get(THREADS_ENV):
        n = cpu_threads()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    return cpu_precision()


def load_prior_files(weights: str | os.PathLike, config: str | os.PathLike | None = None) -> UNetPrior:
    """Load <weights>.safetensors and its JSON config; every failure names the file and the fix."""
    w = Path(weights)
    c = Path(config) if config is not None else w.with_suffix(".json")
    cfg = load_json(c)
    for key in ("unet", "schedule", "domain", "channels", "prediction"):
        if key not in cfg:
            raise InputError(f"{c}: model config lacks {key!r}; it is not a geodiff prior config")
    if int(cfg.get("format_version", 1)) > SUPPORTED_FORMAT:
        raise InputError(f"{c}: format_version {cfg['format_version']} is newer than this geodiff; upgrade")
    if cfg.get("architecture", "unet") != "unet":
        raise InputError(f"{c}: architecture {cfg['architecture']!r} is not supported; only 'unet'")
    net = UNet(UNetConfig.from_dict(cfg["unet"]))
    tensors = load_tensors(w)
    load_state_into(net, tensors, f"{w} with {c.name}")
    return UNetPrior(net, cfg, str(w))
