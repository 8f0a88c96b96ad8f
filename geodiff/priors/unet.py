"""A compact time-conditioned UNet (DDPM/ADM style) sized for CPU inference.

Why compact: the solvers evaluate it tens of times over whole scenes on laptops and 2-core
servers, so the defaults (width 32, three levels, no attention) favour speed over capacity.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from geodiff.errors import InputError


@dataclass
class UNetConfig:
    """Architecture hyper-parameters; stored verbatim in each model's JSON config."""

    in_channels: int = 1
    out_channels: int = 1
    width: int = 32
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = 2
    attention: bool = False  # self-attention at the bottleneck
    dropout: float = 0.0
    time_embed_mult: int = 4

    @property
    def stride(self) -> int:
        """Tile sizes must be multiples of this (one 2x downsampling per level after the first)."""
        return 2 ** (len(self.channel_mult) - 1)

    def to_dict(self) -> dict:
        """The fields as a plain dict (stored in the model's JSON config)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        """Inverse of :meth:`to_dict`; raises ValueError for keys this geodiff does not know."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown UNet config keys {sorted(unknown)}; the model needs a newer geodiff")
        return cls(**d)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer (or real) timesteps, shape (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def _inplace() -> bool:
    """Whether the forward may overwrite its own temporaries: only when no graph is recorded
    (``torch.no_grad`` / ``torch.inference_mode``); training and the DPS Jacobian need them kept.

    Why it matters on the CPU: a full-size activation (e.g. 4 x 96 x 256 x 256 float32, 100 MB) is
    above glibc's mmap threshold, so each new one is mapped, page-faulted in and unmapped again; fewer
    temporaries mean fewer page faults (bench/cpu_profile.py).
    """
    return not torch.is_grad_enabled()


def _groups(ch: int) -> int:
    for g in (8, 4, 2, 1):
        if ch % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    """Two GroupNorm-SiLU-conv layers with the time embedding added in between, plus a skip (DDPM/ADM)."""

    def __init__(self, cin: int, cout: int, temb: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, 2 * cout)  # scale and shift (FiLM)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, H, W), emb (B, E) -> (B, C_out, H, W).

        Without autograd the SiLU, the FiLM scale/shift and the skip sum run in place on buffers this
        block allocated itself: the same operations in the same order (the same bits) with four fewer
        full-size temporaries per block (see :func:`_inplace`).
        """
        inplace = _inplace()
        h = self.conv1(F.silu(self.norm1(x), inplace=inplace))
        scale, shift = self.temb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h)
        h = h.mul_(1 + scale).add_(shift) if inplace else h * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h, inplace=inplace)))
        return h.add_(self.skip(x)) if inplace else self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over the pixels of a feature map, with a residual connection."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(_groups(ch), ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> (B, C, H, W)."""
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """eps/v/x0 network f(x_t, t); the prediction type lives in the model config, not here."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w, temb = cfg.width, cfg.width * cfg.time_embed_mult
        self.time_mlp = nn.Sequential(nn.Linear(w, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(cfg.in_channels, w, 3, padding=1)

        chans = [w]
        ch = w
        self.down = nn.ModuleList()
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                self.down.append(ResBlock(ch, w * mult, temb, cfg.dropout))
                ch = w * mult
                chans.append(ch)
            if level < len(cfg.channel_mult) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                chans.append(ch)

        self.mid1 = ResBlock(ch, ch, temb, cfg.dropout)
        self.mid_attn = Attention(ch) if cfg.attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, temb, cfg.dropout)

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for _ in range(cfg.num_res_blocks + 1):
                self.up.append(ResBlock(ch + chans.pop(), w * mult, temb, cfg.dropout))
                ch = w * mult
            if level > 0:
                self.up.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1)
                    )
                )

        self.norm_out = nn.GroupNorm(_groups(ch), ch)
        self.conv_out = nn.Conv2d(ch, cfg.out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def stride(self) -> int:
        """Tile sizes must be multiples of this (2^(levels - 1))."""
        return self.cfg.stride

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Network output (B, C_out, H, W) for x_t (B, C_in, H, W) and timesteps t (B,).

        Raises ValueError when H or W is not a multiple of :attr:`stride`.
        """
        h_, w_ = x.shape[-2:]
        s = self.stride
        if h_ % s or w_ % s:
            raise InputError(
                f"tile size {h_}x{w_} is not a multiple of the network stride {s}; "
                f"pad or crop the tile to a multiple of {s}"
            )
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = self.time_mlp(timestep_embedding(t, self.cfg.width).to(x.dtype))
        h = self.conv_in(x)
        skips = [h]
        for m in self.down:
            h = m(h, emb) if isinstance(m, ResBlock) else m(h)
            skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for m in self.up:
            if isinstance(m, ResBlock):
                h = m(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = m(h)
        return self.conv_out(F.silu(self.norm_out(h), inplace=_inplace()))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
