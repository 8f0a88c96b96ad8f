"""Linear degradation operators A with their adjoint A^T and pseudo-inverse A^+ (pure torch, batched).

They act on tiles (B, C, H, W).  The adjoint is exact (<A x, y> = <x, A^T y>) and the pseudo-inverse
satisfies A A^+ A = A; tests check both.  DDNM needs A^+, DPS/HQS need A and A^T.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from geodiff.errors import InputError, InvalidSettingError

__all__ = ["Blur", "Downsample", "Identity", "LinearOperator", "Mask"]


class LinearOperator:
    """A linear map on image batches with ``__call__`` (A), ``T`` (A^T) and ``pinv`` (A^+)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """A x for x (B, C, H, W)."""
        raise NotImplementedError

    def T(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """The adjoint A^T y (exact: <A x, y> = <x, A^T y>), shaped like x."""
        raise NotImplementedError

    def pinv(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """The pseudo-inverse A^+ y (A A^+ A = A), shaped like x."""
        raise NotImplementedError

    def gram_diag(self, x: torch.Tensor) -> torch.Tensor:
        """Diagonal of A^T A, shaped like x (a per-pixel curvature for preconditioning)."""
        raise NotImplementedError  # pragma: no cover - interface


class Identity(LinearOperator):
    """A = I (denoising)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def T(self, y: torch.Tensor) -> torch.Tensor:
        """y itself."""
        return y

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """y itself."""
        return y

    def gram_diag(self, x: torch.Tensor) -> torch.Tensor:
        """Ones like x."""
        return torch.ones_like(x)


class Mask(LinearOperator):
    """Inpainting: A x = m * x with a 0/1 mask m (broadcastable to the tiles); A = A^T = A^+."""

    def __init__(self, mask: torch.Tensor):
        m = mask.to(torch.float32) if mask.dtype == torch.bool else mask
        if not torch.all((m == 0) | (m == 1)):
            raise InputError("mask must hold only 0 (missing) and 1 (observed); threshold it first")
        self.mask = m

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask.to(x)

    def T(self, y: torch.Tensor) -> torch.Tensor:
        """m * y (a mask is self-adjoint)."""
        return y * self.mask.to(y)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """m * y (a 0/1 mask is its own pseudo-inverse)."""
        return y * self.mask.to(y)

    def gram_diag(self, x: torch.Tensor) -> torch.Tensor:
        """The mask m broadcast to x's shape."""
        return self.mask.to(x).expand_as(x).clone()


class Downsample(LinearOperator):
    """Average pooling by an integer factor k: A^T spreads y / k^2, A^+ = k^2 A^T (nearest upsampling)."""

    def __init__(self, factor: int):
        if int(factor) != factor or factor < 1:
            raise InvalidSettingError(f"down-sampling factor must be an integer >= 1 (got {factor!r})")
        self.k = int(factor)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.k or x.shape[-2] % self.k:
            raise InputError(
                f"tile {tuple(x.shape[-2:])} is not a multiple of the down-sampling factor {self.k}; "
                "crop or pad it"
            )
        return F.avg_pool2d(x, self.k)

    def T(self, y: torch.Tensor) -> torch.Tensor:
        """Nearest upsampling of y divided by k^2, (B, C, k h, k w)."""
        return self.pinv(y) / self.k**2

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """Nearest upsampling of y, (B, C, k h, k w)."""
        return y.repeat_interleave(self.k, -1).repeat_interleave(self.k, -2)

    def gram_diag(self, x: torch.Tensor) -> torch.Tensor:
        """1 / k^4 everywhere (the diagonal of A^T A), shaped like x."""
        return torch.full_like(x, 1.0 / self.k**4)


def kernel_otf(kernel: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Optical transfer function (rfft2) of a centred kernel for circular convolution on ``shape``."""
    kh, kw = kernel.shape[-2:]
    pad = torch.zeros(*kernel.shape[:-2], *shape, dtype=kernel.dtype, device=kernel.device)
    pad[..., :kh, :kw] = kernel
    pad = torch.roll(pad, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))
    return torch.fft.rfft2(pad)


class Blur(LinearOperator):
    """Circular convolution with a known kernel, computed by FFT.

    The adjoint multiplies by the conjugate transfer function; the pseudo-inverse divides by it
    where |H| > ``tol`` * max|H| and zeroes the rest (the exact Moore-Penrose inverse of a circulant
    matrix whose tiny singular values are treated as zero).
    """

    def __init__(self, kernel: torch.Tensor, tol: float = 1e-3):
        if kernel.dim() != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
            raise InvalidSettingError(
                f"blur kernel must be a 2-D tensor of odd size (got shape {tuple(kernel.shape)})"
            )
        self.kernel = kernel
        self.tol = tol
        self._cache: dict = {}

    def otf(self, like: torch.Tensor) -> torch.Tensor:
        """The transfer function of the kernel for tiles shaped like ``like`` (cached)."""
        key = (tuple(like.shape[-2:]), like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = kernel_otf(self.kernel.to(like.device, like.dtype), key[0])
        return self._cache[key]

    def _apply(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(torch.fft.rfft2(x) * h, s=x.shape[-2:])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply(x, self.otf(x))

    def T(self, y: torch.Tensor) -> torch.Tensor:
        """Circular correlation with the kernel (conjugate transfer function), shaped like y."""
        return self._apply(y, self.otf(y).conj())

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """Division by the transfer function where |H| > tol max|H|, zero elsewhere, shaped like y."""
        h = self.otf(y)
        mag2 = h.abs() ** 2
        keep = h.abs() > self.tol * h.abs().max()
        inv = torch.where(
            keep, h.conj() / torch.where(keep, mag2, torch.ones_like(mag2)), torch.zeros_like(h)
        )
        return self._apply(y, inv)

    def gram_diag(self, x: torch.Tensor) -> torch.Tensor:
        """sum(kernel^2) everywhere (the diagonal of A^T A for circular convolution), shaped like x."""
        return torch.full_like(x, float((self.kernel**2).sum()))
