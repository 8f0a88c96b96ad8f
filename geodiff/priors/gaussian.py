"""An analytic diffusion prior: a Gaussian (or a mixture of Gaussians) whose noise predictor is exact.

x0 ~ sum_k w_k N(mu_k, s^2 I).  Under the VP forward process x_t = sqrt(abar) x0 + sqrt(1-abar) eps
each component stays Gaussian, N(sqrt(abar) mu_k, (abar s^2 + 1 - abar) I), so the score, the
optimal eps-prediction and Tweedie's x0 are known in closed form.  The solvers' tests use it to
compare sampled posteriors with exact ones (one component) and to check that the uncertainty map
concentrates on edges (a mixture of step edges at different positions).
"""

from __future__ import annotations

import torch

from geodiff.priors.schedule import linear_alphas_cumprod

__all__ = ["GaussianPrior", "linear_alphas_cumprod"]


class GaussianPrior:
    """Implements :class:`geodiff.priors.base.DiffusionPrior` with an exact eps(x_t, t).

    ``means``: (C, H, W) for a single Gaussian, or (K, C, H, W) for a mixture (a scalar is allowed
    and broadcast); ``std``: a scalar or a tensor broadcastable to (C, H, W); ``weights``: (K,)
    mixture weights (uniform by default).
    """

    domain = "gaussian"
    stride = 1

    def __init__(
        self,
        means: torch.Tensor | float = 0.0,
        std: torch.Tensor | float = 1.0,
        weights: torch.Tensor | None = None,
        alphas_cumprod: torch.Tensor | None = None,
        channels: int = 1,
    ):
        m = torch.as_tensor(means, dtype=torch.float64)
        if m.dim() <= 3:
            m = m.reshape(1, *([1] * (3 - m.dim())), *m.shape) if m.dim() < 3 else m.unsqueeze(0)
        self.means = m  # (K, C, H, W) or broadcastable
        self.std = torch.as_tensor(std, dtype=torch.float64)
        k = self.means.shape[0]
        w = torch.full((k,), 1.0 / k, dtype=torch.float64) if weights is None else torch.as_tensor(weights)
        self.log_weights = torch.log(w / w.sum()).to(torch.float64)
        self.alphas_cumprod = linear_alphas_cumprod() if alphas_cumprod is None else alphas_cumprod
        self.channels = channels if self.means.shape[1] == 1 else self.means.shape[1]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> GaussianPrior:
        """Move means, std, weights and schedule to ``device`` (and ``dtype``); returns the prior."""
        kw = {"device": device} if dtype is None else {"device": device, "dtype": dtype}
        self.means = self.means.to(**kw)
        self.std = self.std.to(**kw)
        self.log_weights = self.log_weights.to(**kw)
        self.alphas_cumprod = self.alphas_cumprod.to(**kw)
        return self

    def eps(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """E[eps | x_t] = -sqrt(1 - abar) * score(x_t)."""
        dt = x_t.dtype
        abar = self.alphas_cumprod.to(x_t.device, dt)[t].view(-1, 1, 1, 1, 1)  # (B, 1, 1, 1, 1)
        mu = self.means.to(x_t.device, dt).unsqueeze(0)  # (1, K, C, H, W)
        s2 = self.std.to(x_t.device, dt) ** 2
        var = abar * s2 + (1 - abar)  # per-pixel variance of each component at time t
        diff = x_t.unsqueeze(1) - abar.sqrt() * mu  # (B, K, C, H, W)
        if self.means.shape[0] == 1:
            score = -diff[:, 0] / var[:, 0]
        else:
            logp = -(diff**2 / (2 * var)).flatten(2).sum(2) + self.log_weights.to(x_t.device, dt)
            resp = torch.softmax(logp, dim=1).view(*logp.shape, 1, 1, 1)
            score = -(resp * diff / var).sum(1)
        return -(1 - abar[:, 0]).sqrt() * score
