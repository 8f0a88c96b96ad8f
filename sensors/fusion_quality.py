"""No-reference optical-SAR fusion scores exactly as PROTOCOL section 3 defines them.

Why one module: every fusion figure the project reports (the DPS fusion and the classical
baselines alike) must come from the same definitions. All images are 2-D float arrays scaled
to [0, 1]: F the fused image (or the luminance of a colour result), A the optical luminance,
B the SAR amplitude.

Sources: EN, MI and CE are histogram entropies computed with ``scipy.stats.entropy`` /
``scipy.special.rel_entr`` (256 bins over [0, 1]); SSIM is ``skimage.metrics.structural_similarity``;
PSNR uses ``skimage.metrics.mean_squared_error``; Qabf follows Xydeas & Petrovic, "Objective image
fusion performance measure", Electronics Letters 36(4), 2000; VIF follows Sheikh & Bovik, "Image
information and visual quality", IEEE TIP 15(2), 2006 (vifp_mscale); CE follows the cross-entropy of
the VIFB benchmark (Zhang et al., "VIFB: a visible and infrared image fusion benchmark", CVPR-W 2020),
as the review's Table 12 reports it (lower is better).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.signal.windows import gaussian
from scipy.special import rel_entr
from scipy.stats import entropy as _scipy_entropy
from skimage.metrics import mean_squared_error, structural_similarity

__all__ = [
    "BINS",
    "QABF_MAX",
    "cross_entropy",
    "entropy",
    "fusion_report",
    "mutual_information",
    "psnr_fusion",
    "qabf",
    "ssim_sum",
    "vif",
    "viff",
]

BINS = 256
_EDGES = np.linspace(0.0, 1.0, BINS + 1)


def _check(*images: np.ndarray) -> list[np.ndarray]:
    out = []
    shape = None
    for img in images:
        arr = np.asarray(img, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"fusion metrics take 2-D images; got shape {arr.shape} (pass the luminance)")
        if shape is not None and arr.shape != shape:
            raise ValueError(
                f"images differ in shape: {shape} vs {arr.shape}; align them onto one grid first"
            )
        if not np.isfinite(arr).all():
            raise ValueError("image contains NaN/inf; crop or fill nodata before scoring")
        shape = arr.shape
        out.append(np.clip(arr, 0.0, 1.0))
    return out


def _entropy_bits(p: np.ndarray) -> float:
    p = np.ravel(p)
    return float(_scipy_entropy(p[p > 0], base=2)) if (p > 0).any() else 0.0


def _histogram(x: np.ndarray) -> np.ndarray:
    hist, _ = np.histogram(x, bins=_EDGES)
    return hist / hist.sum()


def entropy(f: np.ndarray) -> float:
    """EN: Shannon entropy (bits) of the 256-bin histogram of F over [0, 1] (scipy.stats.entropy)."""
    (f,) = _check(f)
    return _entropy_bits(_histogram(f))


def cross_entropy(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """CE: (CE(A, F) + CE(B, F)) / 2 in bits, CE(X, F) = sum_i h_X(i) log2(h_X(i) / h_F(i)) over the
    256-bin histograms, bins empty in either skipped (the VIFB benchmark's definition, the review's
    Table 12; ``scipy.special.rel_entr``). 0 when F has the histograms of A and B; lower is better."""
    f, a, b = _check(f, a, b)
    hf = _histogram(f)

    def ce(x: np.ndarray) -> float:
        hx = _histogram(x)
        both = (hx > 0) & (hf > 0)
        return float(rel_entr(hx[both], hf[both]).sum() / np.log(2))

    return (ce(a) + ce(b)) / 2


def mutual_information(x: np.ndarray, y: np.ndarray) -> float:
    """MI(X, Y) in bits from the 256 x 256-bin joint histogram over [0, 1]^2."""
    x, y = _check(x, y)
    joint, _, _ = np.histogram2d(x.ravel(), y.ravel(), bins=(_EDGES, _EDGES))
    pxy = joint / joint.sum()
    return _entropy_bits(pxy.sum(1)) + _entropy_bits(pxy.sum(0)) - _entropy_bits(pxy.ravel())


def ssim_sum(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """SSIM(F, A) + SSIM(F, B) (skimage defaults, data_range 1)."""
    f, a, b = _check(f, a, b)
    return float(structural_similarity(f, a, data_range=1.0) + structural_similarity(f, b, data_range=1.0))


def psnr_fusion(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """10 log10(1 / ((MSE(F, A) + MSE(F, B)) / 2)); inf when F equals both."""
    f, a, b = _check(f, a, b)
    mse = (mean_squared_error(a, f) + mean_squared_error(b, f)) / 2
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


# Xydeas & Petrovic (2000) sigmoid constants, as in the reference MATLAB implementation.
_QG = (0.9994, -15.0, 0.5)  # Gamma_g, kappa_g, sigma_g
_QA = (0.9879, -22.0, 0.8)  # Gamma_alpha, kappa_alpha, sigma_alpha
QABF_MAX = _QG[0] / (1 + np.exp(_QG[1] * (1 - _QG[2]))) * _QA[0] / (1 + np.exp(_QA[1] * (1 - _QA[2])))
"""Qabf of a perfect fusion (F equal to A and B): the product of the two sigmoids at 1 (~0.975)."""


def _sobel(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gx = ndimage.sobel(img, axis=1, mode="nearest")
    gy = ndimage.sobel(img, axis=0, mode="nearest")
    strength = np.hypot(gx, gy)
    # orientation in [-pi/2, pi/2]; a zero horizontal gradient means a vertical orientation
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(gx == 0, np.pi / 2, np.arctan(gy / np.where(gx == 0, 1, gx)))
    return strength, alpha


def _edge_preservation(gs: np.ndarray, as_: np.ndarray, gf: np.ndarray, af: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(gs > gf, gf / gs, np.where(gs == gf, 1.0, gs / gf))
    rel = np.nan_to_num(rel, nan=1.0)
    orient = 1 - np.abs(as_ - af) / (np.pi / 2)
    qg = _QG[0] / (1 + np.exp(_QG[1] * (rel - _QG[2])))
    qa = _QA[0] / (1 + np.exp(_QA[1] * (orient - _QA[2])))
    return qg * qa


def qabf(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Xydeas-Petrovic Q^{AB/F}: edge strength and orientation kept from A and B, weighted by their
    Sobel gradient magnitude (exponent L = 1). 0 = no edge kept; QABF_MAX for a perfect fusion."""
    f, a, b = _check(f, a, b)
    ga, aa = _sobel(a)
    gb, ab = _sobel(b)
    gf, af = _sobel(f)
    qaf = _edge_preservation(ga, aa, gf, af)
    qbf = _edge_preservation(gb, ab, gf, af)
    den = (ga + gb).sum()
    return 0.0 if den == 0 else float((qaf * ga + qbf * gb).sum() / den)


def _filter_valid(img: np.ndarray, win: np.ndarray) -> np.ndarray:
    """MATLAB filter2(win, img, 'valid') for a symmetric window."""
    from scipy.signal import correlate2d

    return correlate2d(img, win, mode="valid")


def vif(ref: np.ndarray, dist: np.ndarray) -> float:
    """Pixel-domain VIF (Sheikh & Bovik 2006, vifp_mscale): 4 scales, Gaussian windows, sigma_n^2 = 2
    on the 0-255 scale (images are multiplied by 255 first, so the constant means what it did there)."""
    ref, dist = _check(ref, dist)
    ref, dist = ref * 255.0, dist * 255.0
    sigma_nsq, eps = 2.0, 1e-10
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        w1 = gaussian(n, n / 5)
        win = np.outer(w1, w1)
        win /= win.sum()
        if scale > 1:
            if min(ref.shape) < n:
                break
            ref = _filter_valid(ref, win)[::2, ::2]
            dist = _filter_valid(dist, win)[::2, ::2]
        if min(ref.shape) < n:
            break
        mu1, mu2 = _filter_valid(ref, win), _filter_valid(dist, win)
        s1 = np.maximum(_filter_valid(ref * ref, win) - mu1 * mu1, 0)
        s2 = np.maximum(_filter_valid(dist * dist, win) - mu2 * mu2, 0)
        s12 = _filter_valid(ref * dist, win) - mu1 * mu2
        g = s12 / (s1 + eps)
        sv = s2 - g * s12
        low1 = s1 < eps
        g[low1] = 0
        sv[low1] = s2[low1]
        s1[low1] = 0
        low2 = s2 < eps
        g[low2] = 0
        sv[low2] = 0
        neg = g < 0
        sv[neg] = s2[neg]
        g[neg] = 0
        sv = np.maximum(sv, eps)
        num += np.log10(1 + g * g * s1 / (sv + sigma_nsq)).sum()
        den += np.log10(1 + s1 / sigma_nsq).sum()
    return 1.0 if den == 0 else float(num / den)


def viff(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """VIFF as PROTOCOL section 3 defines it: VIF(A, F) + VIF(B, F)."""
    return vif(a, f) + vif(b, f)


def fusion_report(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """The six PROTOCOL section 3 scores of one fused image F given A (optical) and B (SAR), and CE."""
    return {
        "EN": entropy(f),
        "MI": mutual_information(f, a) + mutual_information(f, b),
        "SSIM": ssim_sum(f, a, b),
        "Qabf": qabf(f, a, b),
        "VIFF": viff(f, a, b),
        "PSNR": psnr_fusion(f, a, b),
        "CE": cross_entropy(f, a, b),
    }
