"""Data terms of the inverse problems (the R of the review's eq. 22-23), with gradients and curvatures.

Every likelihood here is a small object bound to its observation. ``nll(x)`` is the negative
log-likelihood summed per image (shape (B,)); ``grad(x)`` its gradient, by default autograd of ``nll``
and closed-form where one is known (the tests check every one against autograd); ``fisher(x)`` the
per-pixel Fisher information (expected curvature), which the solvers use to precondition guidance steps
so that one step-size setting works for every noise level (L = 1 and L = 4 alike). All are pure torch on
batches of tiles (B, C, H, W), float32 or float64, any device. The physics objects
:class:`SpeckleModel` and :class:`FusionModel` bundle what the SAR-DPS and fusion solvers need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from geodiff.errors import InputError, InvalidSettingError
from geodiff.operators import Identity, LinearOperator

__all__ = [
    "FusionL1TV",
    "FusionModel",
    "GammaIntensity",
    "GammaLogIntensity",
    "Gaussian",
    "GaussianLogIntensity",
    "Likelihood",
    "Poisson",
    "SpeckleModel",
    "check_looks",
    "check_observation",
]

_FLOOR = 1e-6  # smallest intensity the gamma/Poisson terms see: keeps 1/x and log x finite


def _sum_img(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).sum(1)


def check_looks(looks: float) -> float:
    """Return ``looks`` (the equivalent number of looks L) as a float.

    Raises geodiff.errors.InvalidSettingError (a ValueError) saying what a valid value is.
    """
    try:
        value = float(looks)
    except (TypeError, ValueError) as exc:
        raise InvalidSettingError(
            f"looks must be a number > 0 (got {looks!r}); pass e.g. looks=1 for single-look SAR"
        ) from exc
    if not math.isfinite(value) or value <= 0:
        raise InvalidSettingError(
            f"looks must be a finite number > 0 (got {looks!r}); use the sensor's equivalent number of "
            "looks (1 for single-look SLC-derived intensity, ~4.4 for Sentinel-1 GRDH)"
        )
    return value


def check_observation(y: torch.Tensor, name: str = "y", positive: bool = False) -> None:
    """Reject observations a solver cannot use: not a tensor (B, C, H, W), NaN/inf, negative, all-zero.

    ``positive=True`` (intensities) also rejects negative values and all-zero tiles. Raises
    geodiff.errors.InputError (a ValueError) naming the problem and the fix.
    """
    if not isinstance(y, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor of shape (B, C, H, W); got {type(y).__name__}")
    if y.dim() != 4:
        raise InputError(
            f"{name} must have shape (B, C, H, W); got shape {tuple(y.shape)} (add batch/channel axes)"
        )
    if not torch.isfinite(y).all():
        raise InputError(
            f"{name} contains NaN or inf values; mask nodata first (fill it, e.g. with the tile median, "
            "and drop it from the output)"
        )
    if positive:
        if (y < 0).any():
            raise InputError(
                f"{name} has negative values; SAR intensity must be >= 0 (convert dB or amplitude first)"
            )
        zero = (y.flatten(1) <= 0).all(1)
        if zero.any():
            idx = torch.nonzero(zero).flatten().tolist()
            raise InputError(
                f"{name}: tile(s) {idx} are all zero, so they carry no signal to despeckle; "
                "treat them as nodata and skip them"
            )


class Likelihood:
    """Base class of a data term -log p(y | x) bound to its observation y.

    Subclasses implement ``nll`` and ``fisher``; ``grad`` defaults to autograd of ``nll`` and is
    overridden where a closed form is cheaper.
    """

    def nll(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """Negative log-likelihood per image, shape (B,), for x (B, C, H, W) (constants dropped)."""
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """d nll / dx, shaped like x: autograd of :meth:`nll` (no graph is kept)."""
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.nll(xg).sum(), xg)
        return g

    def fisher(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """Per-pixel Fisher information (expected curvature of nll), shaped like x."""
        raise NotImplementedError


class GammaIntensity(Likelihood):
    """Fully developed speckle on intensity: y = x * n, n ~ Gamma(L, 1/L).

    -log p(y | x) = L (log x + y / x) + const, so the gradient is L (x - y) / x^2 (the review's eq. 23,
    dR/dx0_hat = L (y - x0_hat) / x0_hat^2, up to sign) and the Fisher information L / x^2. y and x are
    linear intensity (B, C, H, W), y >= 0; raises ValueError for bad y or looks. x is clamped to
    ``floor`` (relative to the tile mean of y) so that tiny estimates never blow the gradient up.
    """

    def __init__(self, y: torch.Tensor, looks: float, floor: float = _FLOOR):
        check_observation(y, positive=True)
        self.y = y
        self.looks = check_looks(looks)
        self.floor = floor * y.flatten(1).mean(1).view(-1, *([1] * (y.dim() - 1)))

    def _x(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(x, self.floor)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """L sum(log x + y / x) per image, shape (B,)."""
        x = self._x(x)
        return self.looks * _sum_img(torch.log(x) + self.y / x)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """L (x - y) / x^2 (zero where x is below the floor), shaped like x."""
        xc = self._x(x)
        g = self.looks * (xc - self.y) / xc**2
        return torch.where(x > self.floor, g, torch.zeros_like(g))

    def fisher(self, x: torch.Tensor) -> torch.Tensor:
        """L / x^2, shaped like x."""
        return self.looks / self._x(x) ** 2


class GammaLogIntensity(Likelihood):
    """The same speckle model written on u = log x: log y = u + log n with the exact log-gamma density.

    -log p(log y | u) = L (u - log y) + L y exp(-u) + const; gradient L (1 - y e^-u), Fisher L
    (constant: the log form is the natural, variance-stabilised parametrisation). u and y: (B, C, H, W).
    It is the same likelihood as :class:`GammaIntensity` after a change of variables, so chained back
    to x both give the same gradient; the log form is numerically safer (no division by a tiny x).
    """

    def __init__(self, y: torch.Tensor, looks: float, floor: float = _FLOOR):
        check_observation(y, positive=True)
        self.looks = check_looks(looks)
        ref = y.flatten(1).mean(1).view(-1, *([1] * (y.dim() - 1)))
        self.log_y = torch.log(torch.maximum(y, floor * ref))

    def nll(self, u: torch.Tensor) -> torch.Tensor:
        """L sum(e^(log y - u) - (log y - u)) per image at u = log x, shape (B,)."""
        r = self.log_y - u
        return self.looks * _sum_img(torch.exp(r) - r)

    def pixel_nll(self, u: torch.Tensor) -> torch.Tensor:
        """L (e^(log y - u) - (log y - u)) per pixel at u = log x (broadcast against y)."""
        r = self.log_y - u
        return self.looks * (torch.exp(r) - r)

    def hessian(self, u: torch.Tensor) -> torch.Tensor:
        """Observed curvature L y e^-u per pixel (>= the Fisher information L where x <= y), like u."""
        return self.looks * torch.exp(self.log_y - u)

    def grad(self, u: torch.Tensor) -> torch.Tensor:
        """L (1 - y e^-u), shaped like u."""
        return self.looks * (1 - torch.exp(self.log_y - u))

    def fisher(self, u: torch.Tensor) -> torch.Tensor:
        """L everywhere (the log form's Fisher information is constant), shaped like u."""
        return torch.full_like(u, self.looks)


class GaussianLogIntensity(Likelihood):
    """Gaussian approximation of the log-speckle (MuLoG / BM3D-log style) on u = log x.

    log y = u + (psi(L) - log L) + w, w ~ N(0, psi1(L)).  Not exact, but its gradient is linear in u,
    which makes large guidance steps stable. u = log x and y: (B, C, H, W); raises ValueError for bad
    y or looks.
    """

    def __init__(self, y: torch.Tensor, looks: float, floor: float = _FLOOR):
        check_observation(y, positive=True)
        self.looks = check_looks(looks)
        lk = torch.tensor(self.looks, dtype=torch.float64)
        self.bias = float(torch.special.digamma(lk) - torch.log(lk))
        self.var = float(torch.special.polygamma(1, lk))
        ref = y.flatten(1).mean(1).view(-1, *([1] * (y.dim() - 1)))
        self.log_y = torch.log(torch.maximum(y, floor * ref))

    def nll(self, u: torch.Tensor) -> torch.Tensor:
        """sum((u + bias - log y)^2) / (2 psi1(L)) per image, shape (B,)."""
        return _sum_img((u + self.bias - self.log_y) ** 2) / (2 * self.var)

    def pixel_nll(self, u: torch.Tensor) -> torch.Tensor:
        """(u + bias - log y)^2 / (2 psi1(L)) per pixel (broadcast against y)."""
        return (u + self.bias - self.log_y) ** 2 / (2 * self.var)

    def hessian(self, u: torch.Tensor) -> torch.Tensor:
        """Observed curvature 1 / psi1(L) (the nll is quadratic in u), like u."""
        return self.fisher(u)

    def grad(self, u: torch.Tensor) -> torch.Tensor:
        """(u + bias - log y) / psi1(L), shaped like u."""
        return (u + self.bias - self.log_y) / self.var

    def fisher(self, u: torch.Tensor) -> torch.Tensor:
        """1 / psi1(L) everywhere, shaped like u."""
        return torch.full_like(u, 1.0 / self.var)


class Gaussian(Likelihood):
    """y = A x + n, n ~ N(0, sigma^2 I): nll = ||A x - y||^2 / (2 sigma^2), grad A^T (A x - y) / sigma^2.

    x in the model domain (B, C, H, W); y shaped like A x; raises ValueError for sigma <= 0 or bad y
    (noise-free problems: use DDNM).
    """

    def __init__(self, y: torch.Tensor, sigma: float, operator: LinearOperator | None = None):
        check_observation(y)
        if not (float(sigma) > 0 and math.isfinite(float(sigma))):
            raise InvalidSettingError(
                f"sigma must be a finite number > 0 (got {sigma!r}); for noise-free data use DDNM"
            )
        self.y = y
        self.sigma = float(sigma)
        self.A = operator if operator is not None else Identity()

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """||A x - y||^2 / (2 sigma^2) per image, shape (B,)."""
        return _sum_img((self.A(x) - self.y) ** 2) / (2 * self.sigma**2)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """A^T (A x - y) / sigma^2, shaped like x."""
        return self.A.T(self.A(x) - self.y) / self.sigma**2

    def fisher(self, x: torch.Tensor) -> torch.Tensor:
        """Diagonal of A^T A / sigma^2 (exact for identity/mask, a bound-free estimate otherwise)."""
        return self.A.gram_diag(x) / self.sigma**2


class Poisson(Likelihood):
    """Photon counts y ~ Poisson(gain * x): nll = sum(gain x - y log(gain x)), gradient gain - y / x.

    x, y (B, C, H, W), y >= 0 counts; x is clamped to ``floor``. Fisher information gain / x.
    """

    def __init__(self, y: torch.Tensor, gain: float = 1.0, floor: float = _FLOOR):
        check_observation(y)
        if (y < 0).any():
            raise InputError("Poisson counts y must be >= 0; subtract no background below zero")
        if not float(gain) > 0:
            raise InvalidSettingError(f"gain must be > 0 (got {gain!r})")
        self.y = y
        self.gain = float(gain)
        self.floor = floor

    def _x(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp_min(self.floor)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """sum(gain x - y log(gain x)) per image, shape (B,)."""
        x = self._x(x)
        return _sum_img(self.gain * x - self.y * torch.log(self.gain * x))

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """gain - y / x (zero where x is below the floor), shaped like x."""
        xc = self._x(x)
        g = self.gain - self.y / xc
        return torch.where(x > self.floor, g, torch.zeros_like(g))

    def fisher(self, x: torch.Tensor) -> torch.Tensor:
        """gain / x, shaped like x."""
        return self.gain / self._x(x)


def _check_fusion_weights(**weights: float) -> None:
    for name, w in weights.items():
        if not (math.isfinite(float(w)) and float(w) >= 0):
            raise InvalidSettingError(f"fusion weight {name} must be a finite number >= 0 (got {w!r})")


def _grad2d(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences with a zero last row/column (Neumann boundary)."""
    gx = torch.zeros_like(u)
    gy = torch.zeros_like(u)
    gx[..., :, :-1] = u[..., :, 1:] - u[..., :, :-1]
    gy[..., :-1, :] = u[..., 1:, :] - u[..., :-1, :]
    return gx, gy


def _grad2d_adjoint(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """D^T of :func:`_grad2d` (minus the divergence)."""
    out = torch.zeros_like(px)
    out[..., :, :-1] -= px[..., :, :-1]
    out[..., :, 1:] += px[..., :, :-1]
    out[..., :-1, :] -= py[..., :-1, :]
    out[..., 1:, :] += py[..., :-1, :]
    return out


class FusionL1TV:
    """Optical-SAR fusion objective on the fused image f, given the prior's estimate f0:

    J(f) = ||f - f0||_1 + a ||f - o||_1 + b ||f - r||_1 + c ||D(f - o)||_1 + d ||D(f - r)||_1

    (o: optical luminance, r: SAR amplitude, D: forward differences, anisotropic TV): the review's
    fusion eq. 25-26. o, r, f, f0: (B, 1, H, W) float in [0, 1]. ``grad`` is a subgradient (sign(0) = 0,
    as autograd); ``prox`` minimises J exactly enough by Chambolle-Pock primal-dual iterations, which
    the fusion sampler uses as its proximal step.
    """

    def __init__(
        self,
        optical: torch.Tensor,
        sar: torch.Tensor,
        a: float = 1.0,
        b: float = 1.0,
        c: float = 1.0,
        d: float = 1.0,
    ):
        check_observation(optical, "optical")
        check_observation(sar, "sar")
        if optical.shape != sar.shape:
            raise InputError(
                f"optical {tuple(optical.shape)} and sar {tuple(sar.shape)} tiles differ in shape; "
                "resample the SAR onto the optical grid first"
            )
        _check_fusion_weights(a=a, b=b, c=c, d=d)
        self.o, self.r = optical, sar
        self.a, self.b, self.c, self.d = float(a), float(b), float(c), float(d)

    def nll(self, f: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        """J(f; f0) per image, shape (B,), for fused f and prior estimate f0 (B, 1, H, W)."""
        gox, goy = _grad2d(f - self.o)
        grx, gry = _grad2d(f - self.r)
        return (
            _sum_img((f - f0).abs())
            + self.a * _sum_img((f - self.o).abs())
            + self.b * _sum_img((f - self.r).abs())
            + self.c * _sum_img(gox.abs() + goy.abs())
            + self.d * _sum_img(grx.abs() + gry.abs())
        )

    def grad(self, f: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        """A subgradient of J at f (what autograd returns away from kinks)."""
        gox, goy = _grad2d(f - self.o)
        grx, gry = _grad2d(f - self.r)
        return (
            torch.sign(f - f0)
            + self.a * torch.sign(f - self.o)
            + self.b * torch.sign(f - self.r)
            + self.c * _grad2d_adjoint(torch.sign(gox), torch.sign(goy))
            + self.d * _grad2d_adjoint(torch.sign(grx), torch.sign(gry))
        )

    def prox(self, f0: torch.Tensor, iters: int = 60) -> torch.Tensor:
        """argmin_f J(f; f0) by Chambolle-Pock on the five L1 terms (no host syncs, fixed iterations).

        With K = [I; I; I; D; D], ||K||^2 <= 3 + 8 + 8 = 19 (TV blocks with zero weight drop out);
        tau = sigma = 1/||K|| with a small margin.
        """
        norm2 = 3.0 + 8.0 * (self.c > 0) + 8.0 * (self.d > 0)
        step = 1.0 / math.sqrt(norm2 * 1.02)
        ws = (1.0, self.a, self.b)
        bs = (f0, self.o, self.r)
        f = f0.clone()
        fbar = f.clone()
        p = [torch.zeros_like(f0) for _ in range(3)]
        q = [torch.zeros_like(f0) for _ in range(4)]  # (x, y) for optical TV then SAR TV
        dob = _grad2d(self.o)
        drb = _grad2d(self.r)
        for _ in range(iters):
            for k in range(3):
                p[k] = (p[k] + step * (fbar - bs[k])).clamp(-ws[k], ws[k])
            gx, gy = _grad2d(fbar)
            q[0] = (q[0] + step * (gx - dob[0])).clamp(-self.c, self.c)
            q[1] = (q[1] + step * (gy - dob[1])).clamp(-self.c, self.c)
            q[2] = (q[2] + step * (gx - drb[0])).clamp(-self.d, self.d)
            q[3] = (q[3] + step * (gy - drb[1])).clamp(-self.d, self.d)
            kt = p[0] + p[1] + p[2] + _grad2d_adjoint(q[0], q[1]) + _grad2d_adjoint(q[2], q[3])
            f_new = f - step * kt
            fbar = 2 * f_new - f
            f = f_new
        return f


@dataclass(frozen=True, eq=False)
class SpeckleModel:
    """The physics of SAR-DPS: fully developed speckle with ``looks`` L on intensity I = scale * a^2.

    ``scale`` is a float (one per scene, see :func:`geodiff.solvers.estimate_scale`) or a tensor
    broadcastable to the tiles (one per tile); ``form`` picks the likelihood: "log" (exact log-gamma,
    :class:`GammaLogIntensity`), "intensity" (:class:`GammaIntensity`, the same likelihood) or
    "log_gauss" (:class:`GaussianLogIntensity`, MuLoG-style approximation). ``quadrature``: nodes of
    the adaptive Gauss-Hermite rule with which the guidance takes the per-pixel posterior *mean* of
    p(y | x0) N(x0; x0_hat, v) (:func:`geodiff.solvers.sar.sar_guidance`); 0 keeps its mode (the
    Laplace/MAP point, biased low for few looks). Raises ValueError for bad looks, an unknown form or
    a negative node count.
    """

    FORMS: ClassVar[tuple[str, ...]] = ("intensity", "log", "log_gauss")
    looks: float
    scale: float | torch.Tensor = 1.0
    form: str = "log"
    quadrature: int = 12

    def __post_init__(self) -> None:
        object.__setattr__(self, "looks", check_looks(self.looks))
        if self.form not in self.FORMS:
            raise InvalidSettingError(f"form must be one of {self.FORMS} (got {self.form!r})")
        q = self.quadrature
        if isinstance(q, bool) or int(q) != q or not 0 <= q <= 64:
            raise InvalidSettingError(f"quadrature must be an integer node count in 0..64 (got {q!r})")
        object.__setattr__(self, "quadrature", int(q))

    def likelihood(self, y: torch.Tensor) -> Likelihood:
        """The speckle likelihood bound to intensity y (B, C, H, W); log-intensity unless form="intensity"."""
        cls = {"intensity": GammaIntensity, "log": GammaLogIntensity, "log_gauss": GaussianLogIntensity}
        return cls[self.form](y, self.looks)

    def log_likelihood(self, y: torch.Tensor) -> GammaLogIntensity | GaussianLogIntensity:
        """The likelihood on u = log I bound to y (per-pixel nll, gradient, Fisher and observed curvature):
        :class:`GammaLogIntensity` for the exact forms ("log", "intensity"), else the Gaussian log form."""
        if self.form == "log_gauss":
            return GaussianLogIntensity(y, self.looks)
        return GammaLogIntensity(y, self.looks)


@dataclass(frozen=True)
class FusionModel:
    """The physics of the fusion sampler (the review's eq. 25-26): weights of :class:`FusionL1TV`
    (a, b: fidelity to the optical and SAR images; c, d: to their gradients), the guidance ``strength``
    in (0, 1] (how far x0_hat moves to the proximal point) and the primal-dual iterations per step.

    Raises ValueError for negative or non-finite weights and a strength outside (0, 1].
    """

    a: float = 1.0
    b: float = 1.0
    c: float = 1.0
    d: float = 1.0
    strength: float = 1.0
    prox_iters: int = 60

    def __post_init__(self) -> None:
        _check_fusion_weights(a=self.a, b=self.b, c=self.c, d=self.d)
        if not 0 < self.strength <= 1:
            raise InvalidSettingError(f"strength must lie in (0, 1] (got {self.strength!r})")
        if int(self.prox_iters) != self.prox_iters or self.prox_iters < 1:
            raise InvalidSettingError(f"prox_iters must be an integer >= 1 (got {self.prox_iters!r})")

    def objective(self, optical: torch.Tensor, sar: torch.Tensor) -> FusionL1TV:
        """The L1/TV objective bound to optical luminance and SAR amplitude tiles (B, 1, H, W) in [0, 1]."""
        return FusionL1TV(optical, sar, self.a, self.b, self.c, self.d)
