"""The one SAR units detector: metadata first, values only when they are decisive.

Every job (info, qa, despeckle, fuse) and every front (command line, numpy API, xarray accessor)
asks :func:`detect_units` and then :func:`resolve_units`, so they cannot disagree. The detector
never opens files: it takes a sample of the values plus the metadata the caller read.

Order of evidence:

1. dtype: complex values are SLC (``complex``);
2. geodiff's own output tag ``GEODIFF_UNITS``, an xarray ``attrs["units"]`` or a band unit type;
3. product names: ASF HyP3 RTC names carry a scale letter (``…_RTC30_G_gpuned_…``: g/s for γ0/σ0,
   then p/a/d for power/amplitude/dB), OPERA RTC-S1 names (γ0 linear power), Sentinel-1 GRD file
   names with integer DN (amplitude);
4. words in the file name, band descriptions and tags (dB, amplitude, σ0/γ0/power/intensity);
5. values, only where decisive:

   - negative values: linear quantities are never negative, so a *real fraction* (≥ 10 %) of
     negative valid pixels means dB; a few (0.1–10 %) leave it open; fewer are noise;
   - intensity versus amplitude from the fully developed speckle model (Goodman; log-cumulants
     after Anfinsen et al. 2009): in a homogeneous block intensity I = R·S with S ~ Γ(L, 1/L), so
     the log-cumulant estimate of the looks, ψ₁⁻¹(var log I), and the moment estimate,
     1/CV²(I), agree. Stored values X = I^p (p = 1 intensity, p = ½ amplitude) satisfy that
     consistency only after the transform X^(1/p); we solve for the power p̂ that makes the
     two estimates agree (pooled over the most homogeneous 8×8 blocks) and bootstrap it over the
     blocks. Values decide only when every check holds: p̂ and its 90 % interval sit clearly near
     1 (and the speckle has at most 10 looks read as intensity: amplitude of L looks reads as
     intensity of about 4L looks, where the two models differ less than texture moves them) or
     near ½; the values are right-skewed like linear speckle (dB values of a bright scene are
     not); neighbours in the blocks are uncorrelated (texture can mimic either model); and the
     third log-cumulant, which gives L whatever the power, agrees with the fit.

   On synthetic Γ(L) speckle over 950 clean aerial images (bench/units_detection.py) this decides
   96 % of the intensity/amplitude cases and is never wrong; on the shared real SAR scenes
   (correlated speckle, heavy-tailed texture) it mostly asks, and is never wrong either.

Otherwise the units stay ``None`` (ambiguous) with the best guess and the evidence in words, and
:func:`resolve_units` raises :class:`~sensors.errors.AmbiguousUnitsError` naming ``--units``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage
from scipy.optimize import brentq
from scipy.special import polygamma

from sensors.errors import AmbiguousUnitsError
from sensors.looks import _block_grid, _plane_basis, speckle_stride
from sensors.units import DECLARABLE_UNITS, parse_units, words

log = logging.getLogger(__name__)

Source = Literal["metadata", "values", "ambiguous"]

UNITS_TAG = "GEODIFF_UNITS"

# -- value thresholds (see the module docstring and tests/apps/test_units_agreement.py) -------------
DB_NEGATIVE_FRACTION = 0.10  # at least this share of valid pixels negative: dB
NOISE_NEGATIVE_FRACTION = 0.001  # below this share, negatives are noise on linear data
_BLOCK = 8
_FRACTION = 0.4  # share of the fully valid blocks (most homogeneous by their neighbours) measured
_MIN_BLOCKS = 24
_N_BOOT = 200
# log2 of the fitted power: 0 is intensity, -1 amplitude. Texture left in the blocks biases it
# upwards (by about +0.1, up to +0.9 on busy scenes), so the intensity region reaches further up.
_INTENSITY_MIN_POWER = -0.3
_INTENSITY_MAX_POWER = 0.6
_AMPLITUDE_MIN_POWER = -1.35
_AMPLITUDE_MAX_POWER = -0.6
_AMPLITUDE_MAX_HIGH = -0.35  # upper end of the 90 % interval for an amplitude decision
_INTENSITY_MIN_LOW = -0.7  # lower end of the 90 % interval for an intensity decision
# Amplitude of L looks read as intensity has ψ₁⁻¹(ψ₁(L)/4) ≈ 4L looks; beyond ~10 intensity looks
# the two models differ by less than the texture bias, so values never decide intensity there.
_INTENSITY_MAX_LOOKS = 10.0
# Reflectivity texture inside the blocks can mimic either model (a dark, coarsely quantised scene
# of 8-look intensity fits 1-look amplitude); it shows as correlation between neighbours.
_MAX_TEXTURE = 0.08
# The third log-cumulant gives L independently of the power: log(L_skew / L_fit) must lie in this
# range (fully developed speckle: about +0.3 after the per-block quadratic fit). Real scenes with
# heavy-tailed texture or correlated speckle fall below it and bias the power upwards.
_SKEW_LOOKS_RANGE = (-0.3, 1.2)
_POWERS = np.linspace(-2.5, 2.0, 46)  # log2 p grid on which the consistency curve is solved
# Quadratic surface basis of an 8x8 block (removed before every block statistic) and a table of
# ψ₁ for its inverse (log-log interpolation; relative error below 1e-4 for L in 1e-3 … 1e5).
_Q = _plane_basis(np.ones(_BLOCK * _BLOCK, dtype=bool), _BLOCK, 2)
_TABLE_L = np.logspace(-3, 5, 2000)
_TABLE_LOG_PSI1 = np.log(polygamma(1, _TABLE_L))

_HYP3 = re.compile(r"_rtc\d+_[a-z]_([gs])([pad])[uw][nf][ec][dm](?:_|\.|$)")
_OPERA_RTC = re.compile(r"opera_l2_rtc-s1_")
_HYP3_SCALE = {"p": "intensity", "a": "amplitude", "d": "db"}
_S1_GRD = re.compile(r"s1[abcd][-_](?:iw|ew|sm|wv|s\d)[-_]grd")
_SAR_TOKENS = {"vv", "vh", "hh", "hv", "sar", "grd", "grdh", "sentinel1"}
DB_TOKENS = {"db", "decibel", "decibels"}
_AMP_TOKENS = {"amplitude", "amp", "magnitude"}
_INT_TOKENS = {"intensity", "power", "linear", "sigma0", "gamma0", "beta0", "σ0", "γ0", "β0"}


@dataclass(frozen=True)
class UnitsEvidence:
    """What the detector found.

    ``units``: intensity, amplitude, db or complex; None where the evidence is not decisive.
    ``source``: "metadata", "values" or "ambiguous". ``guess``: the most likely units even when
    ambiguous (None where nothing points anywhere). ``evidence``: the reason in words.
    ``power``/``looks``: the fitted power log2 p and looks of the speckle test (where it ran).
    """

    units: str | None
    source: Source
    evidence: str
    guess: str | None = None
    power: float | None = None
    looks: float | None = None

    @property
    def ambiguous(self) -> bool:
        return self.units is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- metadata ----------------------------------------------------------------------------------
def units_from_metadata(
    *,
    dtype: np.dtype | str | None = None,
    descriptions: Sequence[str | None] = (),
    tags: Mapping[str, Any] | None = None,
    name: str = "",
    attrs: Mapping[str, Any] | None = None,
    band_units: Sequence[str | None] = (),
) -> UnitsEvidence | None:
    """Units stated by the metadata, or None where it is silent (see the module docstring).

    ``tags``: dataset tags; ``name``: the file or variable name (a path's last part is enough);
    ``attrs``: xarray attributes; ``band_units``: GDAL band unit types.
    """
    if dtype is not None and np.dtype(dtype).kind == "c":
        return UnitsEvidence("complex", "metadata", f"complex values ({np.dtype(dtype)}): SLC")
    tags = dict(tags or {})
    attrs = dict(attrs or {})
    for key, where in ((UNITS_TAG, "tag"), (UNITS_TAG.lower(), "attribute")):
        for src in (tags, attrs):
            if key in src and str(src[key]).strip():
                units = parse_units(str(src[key]))
                return UnitsEvidence(units, "metadata", f"{where} {UNITS_TAG}={src[key]}")
    stated = [(f"attrs['units']={attrs['units']!r}", attrs["units"])] if "units" in attrs else []
    stated += [(f"tag {k}={v!r}", v) for k, v in tags.items() if k.lower() in ("units", "unit", "unittype")]
    stated += [(f"band unit type {u!r}", u) for u in band_units if u]
    for why, text in stated:
        units = units_from_words(words(str(text)))
        if units is not None:
            return UnitsEvidence(units, "metadata", why)
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    m = _HYP3.search(base)
    if m:
        kind, scale = m.group(1), m.group(2)
        units = _HYP3_SCALE[scale]
        nought = "γ0" if kind == "g" else "σ0"
        return UnitsEvidence(
            units, "metadata", f"ASF HyP3 RTC name: {nought}, scale letter {scale!r} ({units})"
        )
    if _OPERA_RTC.search(base):
        return UnitsEvidence("intensity", "metadata", "OPERA RTC-S1 name: γ0 in linear power")
    text = " ".join(
        [
            base,
            *(d or "" for d in descriptions),
            *(f"{k} {v}" for k, v in tags.items() if not _own_tag(k)),
            *(f"{k} {v}" for k, v in attrs.items() if isinstance(v, str) and not _own_tag(k)),
        ]
    )
    toks = words(text)
    units = units_from_words(toks)
    if units is not None:
        vocabulary = {"db": DB_TOKENS, "amplitude": _AMP_TOKENS, "intensity": _INT_TOKENS}[units]
        said = ", ".join(sorted(toks & vocabulary))
        return UnitsEvidence(units, "metadata", f"name/descriptions/tags say {said!r}: {units}")
    if dtype is not None and np.dtype(dtype).kind in "iu":
        if _S1_GRD.search(base):
            return UnitsEvidence("amplitude", "metadata", "Sentinel-1 GRD name with integer DN (amplitude)")
        if words(text) & _SAR_TOKENS:
            return UnitsEvidence("amplitude", "metadata", "SAR words, integer DN (amplitude by convention)")
    return None


def _own_tag(key: str) -> bool:
    """geodiff's own report tags (QA JSON with "bias_db" and the like) are not unit statements."""
    return str(key).upper().startswith("GEODIFF_")


def units_from_words(toks: set[str]) -> str | None:
    """SAR units named by metadata word tokens (dB before amplitude before intensity), or None."""
    if toks & DB_TOKENS:
        return "db"
    if toks & _AMP_TOKENS:
        return "amplitude"
    if toks & _INT_TOKENS:
        return "intensity"
    return None


# ---- values ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerFit:
    """The speckle-consistency fit: stored values ≈ (R·S)^p with S ~ Γ(L, 1/L).

    ``log2_power``: log2 p̂ (0 intensity, -1 amplitude; nan where no power in 2^-2.5…2^2 fits);
    ``low``/``high``: its bootstrap 5th/95th percentiles over blocks; ``looks``: L at p̂;
    ``skew``: pooled skewness of the values inside the blocks (> 0 for linear speckle);
    ``n_blocks``: blocks measured; ``stride``: pixel step used against correlated speckle;
    ``log_variance``: pooled var(log X) κ₂ in the blocks (ψ₁(L) for intensity, ψ₁(L)/4 for amplitude);
    ``texture``: lag-1 correlation of the detrended log values in the blocks (white speckle: about
    -0.07, the quadratic fit's own; texture that survived the selection raises it).
    """

    log2_power: float
    low: float
    high: float
    looks: float
    skew: float
    n_blocks: int
    stride: int
    log_variance: float
    texture: float
    log_skew: float

    @property
    def looks_from_skew(self) -> float:
        """L whose log-gamma skewness ψ₂(L)/ψ₁(L)^1.5 matches the measured one (power-invariant)."""
        return _looks_from_log_skew(self.log_skew)

    def looks_as(self, units: str) -> float:
        """L of the speckle if the values were ``units`` (intensity: ψ₁⁻¹(κ₂), amplitude: ψ₁⁻¹(4κ₂))."""
        factor = {"intensity": 1.0, "amplitude": 4.0}[units]
        return float(_inverse_trigamma(factor * self.log_variance))


def fit_power(values: np.ndarray, mask: np.ndarray | None = None, *, seed: int = 0) -> PowerFit | None:
    """Fit the power p relating ``values`` (2-D, positive) to gamma-distributed intensity.

    Blocks of 8×8 are ranked by the log-variance of their neighbours (power-invariant, and not
    measured on the block itself, which would select blocks whose noise happened to be low); the
    most homogeneous ``_FRACTION`` are measured. For each trial power p on a grid, the pooled
    log-cumulant looks ψ₁⁻¹(κ₂/p²) and the moment looks of X^(1/p) (CV² with the 1/(nL) small-
    block correction, as in :mod:`sensors.looks`) are compared; p̂ is where they agree. Returns None
    with fewer than 24 usable blocks.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        return None
    valid = np.isfinite(x) & (x > 0)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    if valid.sum() < _MIN_BLOCKS * _BLOCK * _BLOCK:
        return None
    x = np.where(valid, x, 1.0)
    # Correlation alone (not the covariance threshold, which scales with the power): power-invariant.
    stride = speckle_stride(x, valid, first_lag_cov=np.inf)
    blocks = []
    for oy in range(stride):
        for ox in range(stride):
            blocks.append(_homogeneous_blocks(x[oy::stride, ox::stride], valid[oy::stride, ox::stride]))
    sel = np.concatenate(blocks)
    if sel.shape[0] < _MIN_BLOCKS:
        return None
    n = _BLOCK * _BLOCK
    logs = np.log(sel)
    k2 = _detrended_var(logs)  # (nb,)
    powers = 2.0**_POWERS
    # CV² of X^(1/p) per block and trial power: (nb, np)
    cv2 = np.empty((sel.shape[0], powers.size))
    norm = sel / sel.mean(axis=1, keepdims=True)  # scale-free, keeps the powers in range
    for j, p in enumerate(powers):
        y = norm ** (1.0 / p)
        cv2[:, j] = _detrended_var(y) / y.mean(axis=1) ** 2
    rb = (logs - (logs @ _Q) @ _Q.T).reshape(-1, _BLOCK, _BLOCK)
    rho = max((rb[:, :, :-1] * rb[:, :, 1:]).mean(), (rb[:, :-1, :] * rb[:, 1:, :]).mean()) / (rb**2).mean()
    log_skew = float((rb**3).mean() / (rb**2).mean() ** 1.5)
    lin = sel - sel.mean(axis=1, keepdims=True)
    skew = float((lin**3).mean() / (lin**2).mean() ** 1.5)
    log2p, looks = _solve(np.array([k2.mean()]), cv2.mean(axis=0)[None], powers, n)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(sel.shape[0], np.full(sel.shape[0], 1.0 / sel.shape[0]), size=_N_BOOT)
    weights = counts / sel.shape[0]  # (B, nb) bootstrap resampling of the blocks
    boot, _ = _solve(weights @ k2, weights @ cv2, powers, n)
    low, high = (float(v) for v in np.percentile(np.clip(boot, -99.0, 99.0), [5, 95]))
    return PowerFit(
        log2_power=float(log2p[0]),
        low=low,
        high=high,
        looks=float(looks[0]),
        skew=skew,
        n_blocks=int(sel.shape[0]),
        stride=int(stride),
        log_variance=float(k2.mean()),
        texture=float(rho),
        log_skew=log_skew,
    )


def _inverse_trigamma(v: np.ndarray | float) -> np.ndarray:
    """Solve ψ₁(L) = v for L > 0 element-wise from the table (inf where v <= 0 or not finite)."""
    v = np.asarray(v, dtype=np.float64)
    ok = np.isfinite(v) & (v > 0)
    logv = np.log(np.where(ok, v, 1.0))
    # ψ₁ decreases: interpolate on the reversed table; beyond it, ψ₁(L) ≈ 1/L (large) or 1/L² (small)
    out = np.exp(np.interp(-logv, -_TABLE_LOG_PSI1, np.log(_TABLE_L)))
    out = np.where(logv < _TABLE_LOG_PSI1[-1], 1.0 / np.where(ok, v, 1.0), out)
    out = np.where(logv > _TABLE_LOG_PSI1[0], 1.0 / np.sqrt(np.where(ok, v, 1.0)), out)
    return np.where(ok, out, np.inf)


def _detrended_var(values: np.ndarray) -> np.ndarray:
    """Unbiased residual variance per row (one 8x8 block each) after the quadratic surface fit."""
    resid = values - (values @ _Q) @ _Q.T
    return (resid**2).sum(axis=1) / (values.shape[1] - _Q.shape[1])


def _looks_from_log_skew(skew: float) -> float:
    """Invert ψ₂(L)/ψ₁(L)^1.5 (from -2 at L→0 up to 0 at L→∞); nan outside that range."""
    if not -2.0 < skew < 0.0:
        return float("nan")
    try:
        return float(brentq(lambda v: polygamma(2, v) / polygamma(1, v) ** 1.5 - skew, 1e-3, 1e5))
    except ValueError:
        return float("nan")


def _homogeneous_blocks(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The most homogeneous fully valid blocks (ranked by their neighbours' log-variance)."""
    grid, full = _block_grid(x, valid, _BLOCK)
    if not full.any():
        return np.empty((0, _BLOCK * _BLOCK))
    lv = np.zeros(full.shape)
    lv[full] = _detrended_var(np.log(grid[full]))
    ones = np.ones((3, 3))
    neigh_sum = ndimage.correlate(lv, ones, mode="constant") - lv
    neigh_cnt = ndimage.correlate(full.astype(float), ones, mode="constant") - full
    ok = full & (neigh_cnt >= 3)
    if not ok.any():
        return np.empty((0, _BLOCK * _BLOCK))
    rank = neigh_sum[ok] / neigh_cnt[ok]
    k = max(1, int(round(_FRACTION * rank.size)))
    return grid[ok][np.argsort(rank, kind="stable")[:k]]


def _solve(k2: np.ndarray, cv2: np.ndarray, powers: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise log2 p where ψ₁⁻¹(κ₂/p²) equals the moment looks of X^(1/p), and L there.

    ``k2``: (B,) pooled log-variances; ``cv2``: (B, P) pooled CV² of X^(1/p) for the P trial
    powers. Rows where no trial power fits get ±inf (the consistency curve never crosses zero).
    """
    looks_lc = _inverse_trigamma(k2[:, None] / powers[None, :] ** 2)
    disc = np.maximum(1.0 - 4.0 * cv2 / n, 0.0)
    looks_mom = (1.0 + np.sqrt(disc)) / (2.0 * cv2)
    d = np.log(looks_lc) - np.log(looks_mom)  # decreasing in p
    cross = (d[:, :-1] > 0) & (d[:, 1:] <= 0)
    has = cross.any(axis=1)
    i = np.argmax(cross, axis=1)
    rows = np.arange(d.shape[0])
    d0, d1 = d[rows, i], d[rows, i + 1]
    t = d0 / np.where(d0 != d1, d0 - d1, 1.0)
    lp = _POWERS[i] + t * (_POWERS[i + 1] - _POWERS[i])
    edge = np.where(np.all(d > 0, axis=1), np.inf, -np.inf)
    lp = np.where(has, lp, edge)
    looks = np.where(has, _inverse_trigamma(k2 / 4.0 ** np.where(has, lp, 0.0)), np.nan)
    return lp, looks


def units_from_values(sample: np.ndarray, nodata: float | None = None) -> UnitsEvidence:
    """Units from the values alone (decisive or ambiguous; see the module docstring).

    ``sample``: 2-D (rows, cols) real values, a masked array or plain (NaN and ``nodata`` are
    invalid); a 3-D sample uses its first band. Spatial neighbourhoods must be intact (a block
    sample or a window, not a shuffled vector) for the speckle test.
    """
    arr = np.ma.asarray(sample)
    if arr.ndim == 3:
        arr = arr[0]
    data = np.ma.getdata(arr).astype(np.float64)
    valid = ~np.ma.getmaskarray(arr) & np.isfinite(data)
    if nodata is not None and np.isfinite(nodata):
        valid &= data != nodata
    vals = data[valid]
    if vals.size == 0 or not np.any(vals != 0):
        return UnitsEvidence(None, "ambiguous", "no valid non-zero pixels to measure")
    neg = float((vals < 0).mean())
    if neg >= DB_NEGATIVE_FRACTION:
        return UnitsEvidence(
            "db", "values", f"{neg:.0%} of the valid pixels are negative (linear values never are)"
        )
    if neg >= NOISE_NEGATIVE_FRACTION:
        return UnitsEvidence(
            None,
            "ambiguous",
            f"{neg:.1%} of the valid pixels are negative: too many for noise on linear values, "
            "too few for dB",
            guess="db",
        )
    fit = fit_power(data, valid & (data > 0))
    if fit is None:
        return UnitsEvidence(
            None, "ambiguous", "too few homogeneous 8x8 blocks to test the speckle statistics", guess=None
        )
    where = (
        f"speckle fit on {fit.n_blocks} blocks: power 2^{fit.log2_power:.2f} "
        f"(90% {fit.low:.2f}..{fit.high:.2f}; 0 intensity, -1 amplitude), skew {fit.skew:.2f}"
    )
    guess = _nearest(fit.log2_power)
    if not fit.skew > 0:
        return UnitsEvidence(None, "ambiguous", f"{where}: values not right-skewed like linear speckle", "db")
    if fit.texture > _MAX_TEXTURE:
        why = (
            f"{where}: texture in the blocks (neighbour correlation {fit.texture:.2f}) can mimic either model"
        )
        return UnitsEvidence(None, "ambiguous", why, guess, fit.log2_power, None)
    consistency = np.log(fit.looks_from_skew / fit.looks) if np.isfinite(fit.looks) else np.nan
    if not _SKEW_LOOKS_RANGE[0] <= consistency <= _SKEW_LOOKS_RANGE[1]:
        why = (
            f"{where}: the log-skewness says {fit.looks_from_skew:.1f} looks, the fit {fit.looks:.1f}: "
            "the scene does not follow the fully developed speckle model closely enough"
        )
        return UnitsEvidence(None, "ambiguous", why, guess, fit.log2_power, None)
    looks = fit.looks if np.isfinite(fit.looks) else None
    looks_i = fit.looks_as("intensity")
    if (
        _INTENSITY_MIN_POWER <= fit.log2_power <= _INTENSITY_MAX_POWER
        and fit.low > _INTENSITY_MIN_LOW
        and looks_i <= _INTENSITY_MAX_LOOKS
    ):
        return UnitsEvidence(
            "intensity", "values", f"{where}, {looks_i:.1f} looks", "intensity", fit.log2_power, looks_i
        )
    if _AMPLITUDE_MIN_POWER <= fit.log2_power <= _AMPLITUDE_MAX_POWER and fit.high <= _AMPLITUDE_MAX_HIGH:
        looks_a = fit.looks_as("amplitude")
        return UnitsEvidence(
            "amplitude", "values", f"{where}, {looks_a:.1f} looks", "amplitude", fit.log2_power, looks_a
        )
    if looks_i > _INTENSITY_MAX_LOOKS and fit.log2_power > _AMPLITUDE_MAX_POWER:
        where += f" ({looks_i:.0f} looks if intensity: too smooth to tell from amplitude)"
    return UnitsEvidence(None, "ambiguous", f"{where}: not decisive", guess, fit.log2_power, looks)


def _nearest(log2_power: float) -> str | None:
    if not np.isfinite(log2_power):
        return None
    return "intensity" if log2_power > -0.5 else "amplitude"


# ---- the detector ------------------------------------------------------------------------------
def detect_units(
    sample: np.ndarray | None,
    *,
    dtype: np.dtype | str | None = None,
    descriptions: Sequence[str | None] = (),
    tags: Mapping[str, Any] | None = None,
    name: str = "",
    attrs: Mapping[str, Any] | None = None,
    band_units: Sequence[str | None] = (),
    nodata: float | None = None,
) -> UnitsEvidence:
    """The SAR units of a raster band: metadata first, then decisive values, else ambiguous.

    ``sample``: 2-D values of the band with intact neighbourhoods (see
    :func:`units_from_values`), or None (metadata only). Never raises for ambiguity: pass the
    result to :func:`resolve_units`, which does.
    """
    meta = units_from_metadata(
        dtype=dtype, descriptions=descriptions, tags=tags, name=name, attrs=attrs, band_units=band_units
    )
    if meta is not None:
        return meta
    if sample is None:
        return UnitsEvidence(
            None, "ambiguous", "the metadata does not state the units and no values were given"
        )
    if dtype is not None and np.dtype(dtype).kind == "c":
        return UnitsEvidence("complex", "metadata", "complex values: SLC")
    return units_from_values(sample, nodata)


def resolve_units(given: str | None, evidence: UnitsEvidence | None, what: str = "the raster") -> str:
    """The units to work with: ``given`` (the user's --units / units=) wins, else the evidence.

    ``given`` None or "auto" defers to ``evidence``. Raises
    :class:`~sensors.errors.AmbiguousUnitsError` (a ValueError) naming ``--units`` and ``units=``
    when the evidence is ambiguous, and :class:`~sensors.errors.UnknownUnitsError` for a bad name.
    """
    if given is not None and str(given).strip().lower() != "auto":
        units = parse_units(given)
        if evidence is not None and evidence.units is not None and evidence.units != units:
            log.warning("%s: units %s given, the %s says %s", what, units, evidence.source, evidence.units)
        return units
    if evidence is not None and evidence.units is not None:
        return evidence.units
    why = evidence.evidence if evidence is not None else "nothing is known about it"
    guess = f"; the best guess would be {evidence.guess}" if evidence is not None and evidence.guess else ""
    raise AmbiguousUnitsError(
        f"{what}: cannot tell whether the values are SAR intensity, amplitude or dB ({why}{guess}): "
        f"pass --units {'|'.join(DECLARABLE_UNITS)} (units=... in the Python API)",
        evidence,
    )


def units_tags(units: str) -> dict[str, str]:
    """Tags an output records so that reading it back never asks: {"GEODIFF_UNITS": units}."""
    return {UNITS_TAG: parse_units(units)}


def band_unit_type(units: str) -> str:
    """GDAL band unit type for ``units`` ("dB" for dB, else the units name)."""
    return "dB" if parse_units(units) == "db" else parse_units(units)
