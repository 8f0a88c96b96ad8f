"""The SAR's [0, 1] stretch in the fusion: does it map speckle of a flat scene onto the full range?

`geodiff fuse` stretches the (Lee-despeckled) SAR amplitude B by its 0.5-99.5 % percentiles
(:func:`geodiff.apps.fuse.scales.robust_unit`). This script measures, per fusion pair of
``fusion.py``, B's span hi / lo in dB (10 log10 of the intensity ratio) next to what speckle alone
would span (the same 0.5-99.5 % quantile ratio in amplitude), for four speckle floors:

* ``white_lee``: white gamma speckle of the pair's looks L, Lee-filtered (7 x 7) as the pipeline does;
* ``corr_lee``: the same with the speckle's spatial correlation of the pair's raw SAR (the variance
  inflation S of :func:`sensors.speckle_correlation.effective_looks`, reproduced by a Gaussian-blurred
  circular complex field: intensity correlation exp(-h^2 / (2 s^2)), s chosen so that the sum over
  |lags| <= 2 equals S, L-look by averaging round(L) such fields), Lee-filtered;
* ``gamma_desp``: the gamma quantiles at the ENL estimated on the despeckled image
  (:func:`geodiff.apps.facts.array_band_facts`);
* ``corr_raw``: the correlated speckle before despeckling (what the sensor's speckle spans).

A floor rule widens B's stretch, symmetrically in log-amplitude around the scene's median (and never
narrower than the percentiles), to at least the floor's span. With ``--fuse RULE`` it then runs
``fusion.py`` (all methods, same A and B for every method) with B's stretch replaced by RULE:
``corr_lee`` or ``corr_raw`` (the floor rules), or ``sigma0`` (a fixed VV sigma0 range of
[-25, 0] dB in amplitude: the Sentinel-1 IW noise-equivalent sigma0 is about -22 to -26 dB, and
SEN12MS-CR itself clips its S1 patches to [-25, 0] dB).

    .venv/bin/python bench/fusion_sar_stretch.py                       # the span table
    .venv/bin/python bench/fusion_sar_stretch.py --fuse corr_raw      # fusion.py with that stretch

Writes bench/results/fusion_sar_stretch.json (spans) or fusion_sar_stretch_RULE.json (fusion.py's
output with the replaced stretch).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage, optimize, stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fusion  # noqa: E402

import geodiff.apps.fuse.arrays as fuse_arrays_module  # noqa: E402
from geodiff.apps.facts import array_band_facts  # noqa: E402
from geodiff.apps.fuse.scales import UnitScale, robust_unit  # noqa: E402
from geodiff.apps.fuse.scene import load_pair  # noqa: E402
from sensors.speckle_correlation import effective_looks  # noqa: E402
from sensors.speckle_filters import lee  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PCT = (0.5, 99.5)
WINDOW = 7  # the pipeline's Lee window
SIGMA0_DB = (-25.0, 0.0)


def span_db(amp: np.ndarray) -> float:
    """10 log10 of the intensity ratio of the PCT quantiles of an amplitude sample (any shape)."""
    lo, hi = np.percentile(amp, PCT)
    return float(20 * np.log10(hi / lo))


def _inflation(s: float) -> float:
    """Sum over |lags| <= 2 of exp(-h^2 / (2 s^2)) in 2-D: S of a Gaussian-blurred complex field."""
    k = np.arange(-2, 3)
    return float(np.exp(-(k**2) / (2 * s**2)).sum() ** 2)


def speckle(looks: float, inflation: float, n: int = 512, seed: int = 0) -> np.ndarray:
    """(n, n) unit-mean intensity speckle of round(looks) looks and variance inflation ``inflation``."""
    rng = np.random.default_rng(seed)
    s = 0.0 if inflation <= 1.01 else optimize.brentq(lambda v: _inflation(v) - inflation, 0.05, 20.0)
    acc = np.zeros((n, n))
    for _ in range(max(1, round(looks))):
        re, im = rng.normal(size=(n, n)), rng.normal(size=(n, n))
        if s > 0:
            re, im = (ndimage.gaussian_filter(v, s, mode="wrap") for v in (re, im))
        acc += re**2 + im**2
    return acc / acc.mean()


def floors(raw: np.ndarray, despeckled: np.ndarray, valid: np.ndarray, looks: float) -> dict[str, float]:
    """The speckle spans (dB) of the module docstring for one pair (intensities (H, W), ``valid``)."""
    inflation = effective_looks(np.where(valid, raw, np.nan), looks, valid).inflation
    white = np.random.default_rng(0).gamma(looks, 1.0 / looks, size=(512, 512))
    corr = speckle(looks, inflation)
    cut = (slice(8, -8), slice(8, -8))
    enl = array_band_facts(np.where(valid, despeckled, np.nan), units="intensity").looks
    lo, hi = stats.gamma.ppf([PCT[0] / 100, PCT[1] / 100], enl, scale=1.0 / enl)
    return {
        "inflation": inflation,
        "enl_despeckled": float(enl),
        "white_lee": span_db(np.sqrt(lee(white, looks=looks, window=WINDOW))[cut]),
        "corr_lee": span_db(np.sqrt(lee(corr, looks=looks, window=WINDOW))[cut]),
        "gamma_desp": float(10 * np.log10(hi / lo)),
        "corr_raw": span_db(np.sqrt(corr)),
    }


def widened(scale: UnitScale, amp: np.ndarray, floor_db: float) -> UnitScale:
    """``scale`` widened to a span of at least ``floor_db`` symmetrically in log-amplitude around the
    median of ``amp`` (valid amplitudes), never narrower than ``scale``."""
    if 20 * np.log10(scale.hi / scale.lo) >= floor_db:
        return scale
    med, half = float(np.median(amp)), 10 ** (floor_db / 40)
    return UnitScale(min(scale.lo, med / half), max(scale.hi, med * half))


def measure(datasets: list[str] | None) -> list[dict]:
    """One row per pair: looks, B's span, the floors and whether each floor rule changes B's stretch."""
    rows = []
    for ds, name, opt, sar in fusion.pairs(fusion.SHARED):
        if datasets and ds not in datasets:
            continue
        raw = load_pair(opt, sar, despeckle_sar=None, seed=0)
        pair = load_pair(opt, sar, despeckle_sar="lee", seed=0)
        looks = float(pair.despeckle_sar["looks"])
        valid = np.isfinite(pair.sar) & np.isfinite(raw.sar) & np.isfinite(pair.optical).all(0)
        amp = np.sqrt(np.maximum(pair.sar, 0))[valid]
        scale = robust_unit(amp)
        row = {"dataset": ds, "pair": name, "looks": looks, "span_db": span_db(amp)}
        row["median_db"] = float(20 * np.log10(np.median(amp)))
        row.update(floors(raw.sar, pair.sar, valid, looks))
        for k in ("white_lee", "corr_lee", "gamma_desp", "corr_raw"):
            row[f"changes_{k}"] = widened(scale, amp, row[k]) != scale
        rows.append(row)
        print(
            f"{ds:<17}{name[:24]:<25}L {looks:5.2f} S {row['inflation']:5.2f}  B {row['span_db']:5.1f} dB  "
            + "  ".join(
                f"{k} {row[k]:5.1f}{'*' if row[f'changes_{k}'] else ' '}"
                for k in ("white_lee", "corr_lee", "gamma_desp", "corr_raw")
            ),
            flush=True,
        )
    print("(* : the floor rule widens that pair's stretch)")
    return rows


def run_fusion(rule: str, argv: list[str]) -> int:
    """fusion.py with B's stretch replaced by ``rule`` (its output goes to fusion_sar_stretch_RULE.json)."""
    floor: dict[str, float] = {}
    original_load = fusion.load_pair

    def load(opt: Path, sar: Path, **kw: object) -> object:
        pair = original_load(opt, sar, **kw)
        if rule != "sigma0":
            raw = original_load(opt, sar, despeckle_sar=None, seed=0)
            valid = np.isfinite(raw.sar) & np.isfinite(pair.optical).all(0)
            floor["db"] = floors(raw.sar, pair.sar, valid, float(pair.despeckle_sar["looks"]))[rule]
        return pair

    def scales(lum: np.ndarray, amp: np.ndarray, optical_valid: np.ndarray, valid: np.ndarray):  # noqa: ANN202
        scale_a, scale_b = robust_unit(lum, optical_valid), robust_unit(amp, valid)
        if rule == "sigma0":
            return scale_a, UnitScale(*(10 ** (v / 20) for v in SIGMA0_DB))
        return scale_a, widened(scale_b, amp[valid & np.isfinite(amp)], floor["db"])

    fusion.load_pair = load
    fuse_arrays_module.fusion_scales = scales
    out = REPO / "bench" / "results" / f"fusion_sar_stretch_{rule}.json"
    return fusion.main([*argv, "--out", str(out)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default=None, help="Comma-separated subset (as fusion.py).")
    ap.add_argument("--fuse", choices=("corr_lee", "corr_raw", "sigma0"), default=None)
    args, rest = ap.parse_known_args(argv)
    if args.fuse:
        extra = ["--datasets", args.datasets] if args.datasets else []
        return run_fusion(args.fuse, [*rest, *extra])
    rows = measure(args.datasets.split(",") if args.datasets else None)
    out = REPO / "bench" / "results" / "fusion_sar_stretch.json"
    out.write_text(json.dumps({"pct": PCT, "lee_window": WINDOW, "pairs": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
