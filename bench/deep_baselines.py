"""Deep one-pass despeckling baselines: SAR2SAR and MERLIN from the ``deepdespeckling`` package (0.8).

    OMP_NUM_THREADS=1 .venv/bin/python bench/deep_baselines.py [--limit 16] [--looks 1 4] [--no-real]
        [--profiles-rev REV]

* PROTOCOL §1 (dev images, synthetic speckle, the draws of ``bench/solvers_dev.py``): PSNR, SSIM, ΔPSNR vs
  BM3D-log (mean ± standard error over images), images better, CPU seconds per image for noisy, BM3D-log
  (the cache of ``solvers_dev.py``), SAR2SAR and MERLIN, next to the geodiff rows of another run read from
  ``bench/results/despeckle_profiles_L{1,4}_images.json`` when that run holds the same images.
* PROTOCOL §2 (the real Sentinel-1 single-look crops ``sar2sar_s1_singlelook``): ratio mean, L·var(r),
  bias dB, ENL of SAR2SAR and MERLIN next to Lee 7×7 and BM3D-log (``sensors.quality.quality_report``).

Writes ``bench/results/deep_baselines.json``. ``deepdespeckling`` (the ``bench`` extra) ships the trained
weights inside its wheel; nothing is downloaded. Its file-level API opens ``.cos``/``.npy`` folders and
imports GDAL's Python bindings, so the networks are applied here directly from the package's ``Model`` and
normalisation constants, tile by tile exactly as its ``Sar2SarDenoiser`` / ``MerlinDenoiser`` do.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
OUT = RESULTS / "deep_baselines.json"

# Median single-look amplitude of the Sentinel-1 crops that SAR2SAR's authors ship as its test data
# (shared data ``sar2sar_s1_singlelook``: medians 64-108, median log-amplitude 4.17-4.68). The networks
# normalise log-amplitude with fixed constants (m, M) learned on that radiometry, so an image in other
# units is scaled to put its median amplitude here and scaled back afterwards (see ``_scale``).
A_REF = 78.0
MERLIN_MODELS = ("stripmap", "spotlight", "sentinel_tops")
PATCH = 256  # the package's PATCH_SIZE; stride PATCH - 2 as its STRIDE_SIZE
MIN_SIDE = 32  # five 2x poolings in the U-Net


def _package_dir() -> Path:
    import deepdespeckling

    return Path(deepdespeckling.__file__).resolve().parent


@functools.cache
def _network(name: str) -> torch.nn.Module:
    """The package's U-Net (``deepdespeckling.model.Model``) with the weights its wheel bundles.

    SAR2SAR's file is a whole training checkpoint (epoch, optimizer state), which ``torch.load`` refuses with
    ``weights_only=True`` (the default since torch 2.6); it is loaded with ``weights_only=False`` here and
    only here, a file that comes with the installed package. MERLIN's files are plain state dicts.
    """
    from deepdespeckling.model import Model

    base = _package_dir()
    if name == "sar2sar":
        ckpt = torch.load(base / "sar2sar/saved_model/sar2sar.pth", map_location="cpu", weights_only=False)
        state = ckpt["model_state_dict"]
    elif name in MERLIN_MODELS:
        state = torch.load(base / f"merlin/saved_models/{name}.pth", map_location="cpu", weights_only=True)
    else:
        raise ValueError(f"unknown network {name!r}: use 'sar2sar' or one of {MERLIN_MODELS}")
    net = Model(torch.device("cpu"), height=PATCH, width=PATCH)
    net.load_state_dict(state)
    return net.eval()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _starts(n: int, patch: int) -> list[int]:
    """Tile origins on one axis as ``Denoiser.initialize_axis_range``: stride patch - 2, last one flush."""
    if n == patch:
        return [0]
    out = list(range(0, n - patch, patch - 2))
    if out[-1] + patch < n:
        out.append(n - patch)
    return out


def _run_tiled(name: str, z: np.ndarray, denorm=None) -> np.ndarray:
    """Apply network ``name`` to a normalised (H, W) float32 image by overlapping square patches.

    The patch is 256 px (the package's default) or, for smaller images, the largest multiple of 32 that fits.
    Overlaps are averaged after ``denorm`` (SAR2SAR: in amplitude) or before it (MERLIN: ``denorm`` None,
    normalised log domain), each as the package does. Returns float64 (H, W).
    """
    h, w = z.shape
    patch = min(PATCH, (min(h, w) // MIN_SIDE) * MIN_SIDE)
    net = _network(name)
    net.height = net.width = patch  # Model.forward reshapes to (1, 1, height, width)
    acc = np.zeros((h, w))
    count = np.zeros((h, w))
    zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
    with torch.inference_mode():
        for y0 in _starts(h, patch):
            for x0 in _starts(w, patch):
                out = net(zt[y0 : y0 + patch, x0 : x0 + patch]).numpy()[0, 0].astype(np.float64)
                acc[y0 : y0 + patch, x0 : x0 + patch] += denorm(out) if denorm is not None else out
                count[y0 : y0 + patch, x0 : x0 + patch] += 1.0
    return acc / count


def _check(intensity: np.ndarray) -> np.ndarray:
    y = np.asarray(intensity, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"expected one (H, W) intensity band, got shape {y.shape}: pass a single band")
    if min(y.shape) < MIN_SIDE:
        raise ValueError(f"image {y.shape} is smaller than {MIN_SIDE} px on a side: pass a larger crop")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise ValueError("intensity must be finite and >= 0: fill nodata and convert dB/amplitude first")
    return y


def _scale(y: np.ndarray, scale: float | None) -> float:
    """Amplitude factor s with median(s·√y) = A_REF (``scale`` when given; 1.0 = the data's own units)."""
    if scale is not None:
        return float(scale)
    med = float(np.median(np.sqrt(y)))
    if med <= 0:
        raise ValueError("median amplitude is 0: pass scale= explicitly (1.0 keeps the data's units)")
    return A_REF / med


def mean_matched(estimate: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """x̂ · mean(y) / mean(x̂): a global radiometric correction that needs no reference (the noisy mean is
    unbiased for the mean reflectivity). (H, W) float64 out."""
    return estimate * (float(np.mean(intensity)) / float(np.mean(estimate)))


def sar2sar(intensity: np.ndarray, *, scale: float | None = None) -> np.ndarray:
    """Despeckle with SAR2SAR (Dalsasso, Denis & Tupin 2021, IEEE JSTARS 14, "SAR2SAR: a semi-supervised
    despeckling algorithm for SAR images").

    Args:
        intensity: (H, W) speckled intensity, any float dtype, ≥ 0, H and W ≥ 32. Not modified.
        scale: amplitude factor applied before the network and undone after; None puts the median amplitude
            at ``A_REF`` (the radiometry of SAR2SAR's Sentinel-1 test data); 1.0 keeps the data's units.

    Returns:
        (H, W) float64 despeckled intensity, same units as the input.

    The package's recipe: amplitude a = √y, z = (ln(a + 1e-6) − m)/(M − m) with its constants m = −1.43,
    M = 10.09 (log amplitude), residual U-Net x − n(x) on 256² patches (stride 254), amplitude
    exp((M − m)·ẑ + m) averaged over overlaps. Trained with the gamma co-log-likelihood on single-look
    Sentinel-1 pairs, so its squared output estimates the reflectivity (intensity mean); returned squared.
    Raises ValueError for a non-2-D, too small, negative or non-finite input.
    """
    from deepdespeckling.utils.constants import M, m

    y = _check(intensity)
    s = _scale(y, scale)
    a = np.sqrt(y) * s
    z = (np.log(a + 1e-6) - m) / (M - m)
    with _one_thread():
        amp = _run_tiled("sar2sar", z, denorm=lambda o: np.exp((M - m) * o + m))
    return (amp / s) ** 2


def merlin(
    intensity: np.ndarray,
    model: str = "stripmap",
    *,
    scale: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Despeckle with MERLIN (Dalsasso, Denis & Tupin 2022, IEEE TGRS 60, "As if by magic: self-supervised
    training of deep despeckling networks with MERLIN").

    MERLIN denoises the real and the imaginary part of a single-look complex (SLC) image separately, each
    with the other as its target. The package only takes SLC (.cos or 2-channel .npy); for an intensity
    image this function makes the SLC that single-look speckle implies: s = √y · e^{iφ} with φ uniform on
    [0, 2π) (``seed``), independent of y. For fully developed 1-look speckle that field has exactly the
    circular complex Gaussian law of an SLC (real and imaginary parts i.i.d. N(0, x/2)), the model
    MERLIN was trained on; the phase carries no information. The package's spectrum "symmetrisation"
    (Doppler centring of a real SLC) is skipped: the synthetic field is white.

    Args:
        intensity: (H, W) speckled intensity, ≥ 0, H and W ≥ 32. Not modified.
        model: the bundled weights "stripmap" (TerraSAR-X stripmap, default), "spotlight" or
            "sentinel_tops" (uses the package's Sentinel-TOPS constants M_s, m_s).
        scale: as in :func:`sar2sar`.
        seed: seed of the random phase.

    Returns:
        (H, W) float64 despeckled intensity x̂ = ½(â_re² + â_im²) (the package's combination), input units.
        Per part: z = (ln(part² + 1e-3) − 2m)/(2(M − m)), U-Net on 256² patches averaged over overlaps in
        z, â = exp((M − m)·ẑ + m). Raises ValueError as :func:`sar2sar`, or for an unknown model.
    """
    from deepdespeckling.utils.constants import M, M_s, m, m_s

    if model not in MERLIN_MODELS:
        raise ValueError(f"unknown MERLIN model {model!r}: use one of {MERLIN_MODELS}")
    hi, lo = (M_s, m_s) if model == "sentinel_tops" else (M, m)
    y = _check(intensity)
    s = _scale(y, scale)
    amp = np.sqrt(y) * s
    phase = np.random.default_rng(seed).uniform(0.0, 2.0 * np.pi, size=y.shape)
    est = []
    with _one_thread():
        for part in (amp * np.cos(phase), amp * np.sin(phase)):
            z = (np.log(part * part + 1e-3) - 2 * lo) / (2 * (hi - lo))
            est.append(np.exp((hi - lo) * _run_tiled(model, z) + lo))
    return 0.5 * (est[0] ** 2 + est[1] ** 2) / (s * s)


# ----------------------------------------------------------------------------------------------------------
# benchmark


def _mean_se(v: list[float]) -> tuple[float, float]:
    a = np.asarray(v, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else 0.0


def _timed(fn, *args, **kw) -> tuple[np.ndarray, float]:
    c = time.process_time()
    out = fn(*args, **kw)
    return out, time.process_time() - c


def dev_methods(looks: int) -> dict:
    """name -> callable(intensity) for the §1 rows at L = ``looks``."""
    del looks  # the networks are blind to L (single-look training); same calls at every L
    return {
        "sar2sar": lambda y: sar2sar(y),
        "merlin stripmap": lambda y: merlin(y, "stripmap"),
        "merlin stripmap mean-matched": lambda y: mean_matched(merlin(y, "stripmap"), y),
        "merlin sentinel_tops": lambda y: merlin(y, "sentinel_tops"),
        "merlin sentinel_tops mean-matched": lambda y: mean_matched(merlin(y, "sentinel_tops"), y),
        "sar2sar y^½ mean-matched": sar2sar_compressed,
    }


def sar2sar_compressed(intensity: np.ndarray) -> np.ndarray:
    """SAR2SAR on y^½ (log-range halved), output squared and mean-matched: not the package's recipe.

    Probing on the first 4 dev images showed the packaged weights remove far less single-look speckle
    than 4-look speckle; halving the log-deviations of the input (y ↦ y^½, i.e. log-speckle std 1.28 ↦
    0.64 in intensity) brings them into the range the weights handle. (H, W) float64 out.
    """
    y = _check(intensity)
    return mean_matched(sar2sar(np.sqrt(y)) ** 2, y)


def run_dev(limit: int, looks: int) -> list[dict]:
    """Per image: {image, L, px, method: {PSNR, SSIM, cpu_s}} for noisy, bm3d-log and the deep methods."""
    import solvers_dev

    images = solvers_dev.load_dev(limit)
    ys = solvers_dev.speckle(images, looks, len(images))
    methods = dev_methods(looks)
    for net in ("sar2sar", *MERLIN_MODELS):  # load the weights outside the timings
        _network(net)
    rows = []
    for (name, a), y in zip(images, ys, strict=True):
        row: dict = {"image": name, "L": looks, "px": int(a.size)}
        p, s = solvers_dev.score(a, y)
        row["noisy"] = {"PSNR": p, "SSIM": s, "cpu_s": 0.0}
        bm, _, bm_cpu = solvers_dev.bm3d_log_timed(name, y, looks)
        p, s = solvers_dev.score(a, bm)
        row["bm3d-log"] = {"PSNR": p, "SSIM": s, "cpu_s": bm_cpu}
        for method, fn in methods.items():
            out, cpu = _timed(fn, y)
            p, s = solvers_dev.score(a, out)
            ratio = float(out.mean() / (a * a).mean())  # radiometric bias against the truth
            row[method] = {"PSNR": p, "SSIM": s, "cpu_s": cpu, "mean_ratio": ratio}
        print(
            f"L={looks} {name}: "
            + " ".join(f"{k} {v['PSNR']:.2f}" for k, v in row.items() if isinstance(v, dict)),
            file=sys.stderr,
            flush=True,
        )
        rows.append(row)
    return rows


def geodiff_rows(looks: int, dev: list[dict], rev: str | None = None) -> tuple[list[dict], str]:
    """The sar-dps rows of results/despeckle_profiles_L{looks}_images.json on the same images, if any.

    ``rev``: read the file as committed in that git revision instead of the working tree.
    """
    path = RESULTS / f"despeckle_profiles_L{looks}_images.json"
    if rev:
        rel = path.relative_to(REPO).as_posix()
        done = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=REPO, capture_output=True, text=True)
        if done.returncode:
            return [], f"{rel} not in {rev}"
        text = done.stdout
    elif path.exists():
        text = path.read_text()
    else:
        return [], f"{path.name} absent"
    other = {r["image"]: r for r in json.loads(text) if r.get("L") == looks}
    missing = [r["image"] for r in dev if r["image"] not in other]
    if missing:
        return [], f"{path.name} lacks {len(missing)} of the images"
    drift = max(abs(other[r["image"]]["noisy"]["PSNR"] - r["noisy"]["PSNR"]) for r in dev)
    if drift > 1e-3:
        return [], f"{path.name}: noisy PSNR differs by {drift:.3g} dB (another speckle draw)"
    return [other[r["image"]] for r in dev], f"{path.name} (same images, noisy PSNR within {drift:.1g} dB)"


def summarise(per_image: list[dict], methods: list[str], source: str) -> list[dict]:
    """Aggregate rows: PSNR, SSIM, ΔPSNR vs that run's bm3d-log (mean ± s.e.), better, CPU s."""
    out = []
    for method in methods:
        psnr = [r[method]["PSNR"] for r in per_image]
        ssim = [r[method]["SSIM"] for r in per_image]
        d = [r[method]["PSNR"] - r["bm3d-log"]["PSNR"] for r in per_image]
        dssim = [r[method]["SSIM"] - r["bm3d-log"]["SSIM"] for r in per_image]
        cpu = [r[method]["cpu_s"] for r in per_image if r[method].get("cpu_s") is not None]
        dm, dse = _mean_se(d)
        out.append(
            dict(
                method=method,
                L=per_image[0]["L"],
                n=len(per_image),
                PSNR=float(np.mean(psnr)),
                SSIM=float(np.mean(ssim)),
                dPSNR=dm,
                dPSNR_se=dse,
                dSSIM=float(np.mean(dssim)),
                better=int(sum(x > 0 for x in d)),
                cpu_s=float(np.mean(cpu)) if cpu else None,
                mean_ratio=(
                    float(np.mean([r[method]["mean_ratio"] for r in per_image]))
                    if "mean_ratio" in per_image[0][method]
                    else None
                ),
                source=source,
            )
        )
    return out


def run_real(data: Path) -> list[dict]:
    """§2 on the Sentinel-1 single-look crops: SAR2SAR (native units, scale 1), Lee 7×7, BM3D-log, L = 1."""
    import solvers_dev

    from sensors.quality import quality_report

    methods = {
        "lee 7x7": lambda y: solvers_dev.lee_filter(y, 1),
        "bm3d-log": lambda y: solvers_dev.bm3d_log(y, 1),
        "sar2sar": lambda y: sar2sar(y, scale=1.0),
        "merlin sentinel_tops": lambda y: merlin(y, "sentinel_tops", scale=1.0),
        "merlin sentinel_tops mean-matched": lambda y: mean_matched(merlin(y, "sentinel_tops", scale=1.0), y),
        "sar2sar y^½ mean-matched": sar2sar_compressed,
    }
    for net in ("sar2sar", *MERLIN_MODELS):
        _network(net)
    rows = []
    for p in sorted((data / "sar2sar_s1_singlelook").glob("*.npy")):
        y = np.load(p).astype(np.float64) ** 2
        mask = y > 0
        for method, fn in methods.items():
            out, cpu = _timed(fn, y)
            q = quality_report(y, out, looks=1.0, mask=mask).to_dict()
            rows.append(dict(image=p.stem, method=method, cpu_s=cpu, px=int(y.size), **q))
        print(f"real {p.stem}: done", file=sys.stderr, flush=True)
    return rows


REAL_KEYS = ("ratio_mean", "ratio_var_times_looks", "bias_db", "enl_input", "enl_output")


def summarise_real(rows: list[dict]) -> list[dict]:
    """Mean (and ``median_*``) over the crops of each §2 figure, per method, and CPU s per Mpx.

    Printed as mean (median): a few pixels near 0 in three crops dominate some networks' means."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        sel = [r for r in rows if r["method"] == method]
        agg = {k: float(np.mean([r[k] for r in sel if r[k] is not None])) for k in REAL_KEYS}
        agg |= {f"median_{k}": float(np.median([r[k] for r in sel if r[k] is not None])) for k in REAL_KEYS}
        mpx = sum(r["px"] for r in sel) / 1e6
        out.append(dict(method=method, n=len(sel), cpu_s_per_mpx=sum(r["cpu_s"] for r in sel) / mpx, **agg))
    return out


def print_dev(table: list[dict]) -> None:
    print("| method | L | PSNR | SSIM | ΔPSNR vs BM3D-log | ΔSSIM | better | CPU s | source |")
    print("|---|---|---:|---:|---|---:|---|---:|---|")
    for r in table:
        cpu = f"{r['cpu_s']:.2f}" if r["cpu_s"] is not None else "–"
        print(
            f"| {r['method']} | {r['L']} | {r['PSNR']:.2f} | {r['SSIM']:.4f} | {r['dPSNR']:+.2f} ± "
            f"{r['dPSNR_se']:.2f} | {r['dSSIM']:+.4f} | {r['better']}/{r['n']} | {cpu} | {r['source']} |"
        )


def print_real(table: list[dict]) -> None:
    print("| method | ratio mean | L·var(r) | bias dB | ENL in → out | CPU s/Mpx |")
    print("|---|---:|---:|---:|---|---:|")
    for r in table:
        print(
            f"| {r['method']} | {r['ratio_mean']:.3f} ({r['median_ratio_mean']:.3f}) | "
            f"{r['ratio_var_times_looks']:.2f} ({r['median_ratio_var_times_looks']:.2f}) | "
            f"{r['bias_db']:+.2f} ({r['median_bias_db']:+.2f}) | {r['enl_input']:.2f} → "
            f"{r['enl_output']:.1f} ({r['median_enl_output']:.1f}) | {r['cpu_s_per_mpx']:.2f} |"
        )


def main(argv: list[str] | None = None) -> int:
    """Run §1 (dev images) and §2 (real crops); print both tables; write results/deep_baselines.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=16, help="first N dev images (0 = all 52)")
    ap.add_argument("--looks", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--no-real", action="store_true", help="skip the §2 table on the real crops")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--profiles-rev", help="read the sar-dps rows as committed in this git revision")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "bench"))
    sys.path.insert(0, str(REPO))
    import deepdespeckling  # noqa: F401  (fail early with the install hint)
    import solvers_dev

    torch.set_num_threads(1)
    dev_tables, dev_images = [], []
    for looks in args.looks:
        per_image = run_dev(args.limit or None, looks)
        dev_images += per_image
        ours = summarise(per_image, ["noisy", "bm3d-log", *dev_methods(looks)], "this run")
        other, note = geodiff_rows(looks, per_image, args.profiles_rev)
        geo = [k for k in (other[0] if other else {}) if k.startswith("sar-dps")]
        theirs = summarise(other, geo, "despeckle_profiles (other run)") if other else []
        print(f"geodiff rows at L = {looks}: {note}", file=sys.stderr)
        dev_tables += ours + theirs
    print_dev(dev_tables)
    real_rows, real_table = [], []
    if not args.no_real:
        real_rows = run_real(solvers_dev.DATA)
        real_table = summarise_real(real_rows)
        print()
        print_real(real_table)
    from importlib.metadata import version

    meta = dict(
        protocol="PROTOCOL.md §1 (dev images, one speckle draw per image as solvers_dev.py) and §2",
        deepdespeckling=version("deepdespeckling"),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        profiles_rev=args.profiles_rev,
        omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
        machine=f"{platform.machine()} {os.cpu_count()} cpu",
        a_ref=A_REF,
        cpu_s="time.process_time per image; BM3D-log from the solvers_dev cache (timed the same way); "
        "the sar-dps rows come from another run (quality deterministic, time not)",
    )
    doc = dict(meta=meta, dev=dev_tables, real=real_table, dev_images=dev_images, real_images=real_rows)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(args.out)
    print(f"wrote {args.out.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
