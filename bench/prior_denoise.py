"""Prior quality: one-step (Tweedie) denoising PSNR of each prior vs BM3D, plus unconditional samples.

Protocol (issue 5): dev images virtual_sar_clean_gray/01900-01949, clean amplitude a = (g+1)/256 in
[0, 1]; y = a + sigma n, n ~ N(0, 1) (numpy default_rng(1000 + round(255 sigma)), one draw per image in
sorted order). Prior: z = 2y - 1 carries noise 2 sigma, so take the VP timestep t with
sqrt((1-abar_t)/abar_t) closest to 2 sigma, x_t = sqrt(abar_t) z, x0_hat = Tweedie(x_t, eps(x_t, t)),
a_hat = clip((x0_hat + 1)/2, 0, 1). BM3D: bm3d.bm3d(y, sigma_psd=sigma). PSNR with data_range 1.

    python bench/prior_denoise.py                       # both shipped priors, 50 images, samples PNG
    python bench/prior_denoise.py --reuse-bm3d          # take BM3D numbers from the previous JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from geodiff.priors import abar_at, load, tweedie_x0
from geodiff.priors.schedule import eps_from_x0, q_sample, t_for_sigma

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("GEODIFF_SHARED_DATA", REPO.parent / "shared" / "data")) / "virtual_sar_clean_gray"


def dev_images(limit: int) -> list[Path]:
    files = sorted(DATA.glob("019[0-4]?.jpg"))[:limit]
    if not files:
        sys.exit(f"no development images under {DATA} (set up ../shared/data)")
    return files


def clean_amplitude(path: Path) -> np.ndarray:
    g = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    h, w = (g.shape[0] // 8) * 8, (g.shape[1] // 8) * 8
    return (g[:h, :w] + 1) / 256


def noisy(a: np.ndarray, sigma255: int, rng: np.random.Generator) -> np.ndarray:
    return a + (sigma255 / 255) * rng.standard_normal(a.shape)


def _dihedral_eps(prior, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """eps averaged over the 8 flips/rotations (the prior was trained with all of them)."""
    acc = torch.zeros_like(x)
    for k in range(4):
        for flip in (False, True):
            xx = torch.rot90(x, k, (2, 3))
            xx = xx.flip(3) if flip else xx
            e = prior.eps(xx, t)
            e = e.flip(3) if flip else e
            acc += torch.rot90(e, -k, (2, 3))
    return acc / 8


@torch.no_grad()
def prior_denoise(
    prior, ys: list[np.ndarray], sigma: float, batch: int = 10, ensemble: bool = False
) -> tuple[list[np.ndarray], int]:
    abar = prior.alphas_cumprod
    t = t_for_sigma(abar, 2 * sigma)
    s = float(abar[t].sqrt())
    outs = []
    for i in range(0, len(ys), batch):
        z = torch.from_numpy(np.stack(ys[i : i + batch])[:, None] * 2 - 1).float().to(prior.device)
        x_t = s * z
        tt = torch.full((len(z),), t, dtype=torch.long, device=z.device)
        eps = _dihedral_eps(prior, x_t, tt) if ensemble else prior.eps(x_t, tt)
        x0 = tweedie_x0(x_t, eps, abar_at(prior.alphas_cumprod, tt, x_t))
        outs += [np.clip((x.cpu().numpy()[0].astype(np.float64) + 1) / 2, 0, 1) for x in x0]
    return outs, t


@torch.no_grad()
def ddim_samples(prior, n: int, size: int, steps: int, seed: int = 0, batch: int = 4) -> np.ndarray:
    """Deterministic DDIM (eta = 0) samples in amplitude [0, 1], shape (n, size, size)."""
    abar = prior.alphas_cumprod.float()
    ts = np.linspace(prior.T - 1, 0, steps).round().astype(int)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch):
        x = torch.randn(min(batch, n - i), prior.channels, size, size, generator=gen).to(prior.device)
        for k, t in enumerate(ts):
            tt = torch.full((len(x),), int(t), dtype=torch.long, device=x.device)
            eps = prior.eps(x, tt)
            x0 = tweedie_x0(x, eps, abar[t]).clamp(-1, 1)
            a_prev = abar[ts[k + 1]] if k + 1 < len(ts) else torch.tensor(1.0, device=x.device)
            x = q_sample(a_prev, x0, eps_from_x0(x, x0, abar[t]))  # DDIM, eta = 0
        out.append(((x[:, 0] + 1) / 2).clamp(0, 1).cpu().numpy())
    return np.concatenate(out)


def save_grid(samples: np.ndarray, path: Path, cols: int = 4, pad: int = 2) -> None:
    n, h, w = samples.shape
    rows = -(-n // cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 255, np.uint8)
    for k, s in enumerate(samples):
        r, c = divmod(k, cols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = (
            np.clip(s * 256 - 1, 0, 255).round().astype(np.uint8)
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)


def _bm3d_one(a: np.ndarray, y: np.ndarray, sigma255: int) -> float:
    import bm3d

    return float(
        peak_signal_noise_ratio(a, np.clip(bm3d.bm3d(y, sigma_psd=sigma255 / 255), 0, 1), data_range=1)
    )


def run_bm3d(result: dict, clean: list[np.ndarray], noisy_by_sigma: dict, args: argparse.Namespace) -> None:
    """BM3D per (sigma, image) in a process pool, sigma = 25 first, stopping at --bm3d-minutes.

    Rows whose BM3D did not finish in time are scored on the images it did finish (n in the table).
    """
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    names = result["images"]
    for s in args.sigmas:
        e = result["bm3d"].setdefault(str(s), {"images": names, "psnr": [None] * len(names)})
        e.setdefault("psnr", [None] * len(names))
    order = sorted(args.sigmas, key=lambda s: (s != 25, s))
    tasks = [(s, i) for s in order for i in range(len(names)) if result["bm3d"][str(s)]["psnr"][i] is None]
    deadline = time.time() + 60 * args.bm3d_minutes if args.bm3d_minutes else float("inf")
    t0 = time.time()
    with ProcessPoolExecutor(args.bm3d_workers) as pool:
        running: dict = {}
        while tasks or running:
            while tasks and len(running) < args.bm3d_workers and time.time() < deadline:
                s, i = tasks.pop(0)
                running[pool.submit(_bm3d_one, clean[i], noisy_by_sigma[s][i], s)] = (s, i)
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for f in done:
                s, i = running.pop(f)
                result["bm3d"][str(s)]["psnr"][i] = f.result()
            for s in args.sigmas:
                e = result["bm3d"][str(s)]
                got = [p for p in e["psnr"] if p is not None]
                e["n"] = len(got)
                e["psnr_mean"] = float(np.mean(got)) if got else None
            result["bm3d_seconds"] = round(time.time() - t0, 1)
            _write(args.out, result)  # partial results can be reused with --reuse-bm3d
    for s in args.sigmas:
        e = result["bm3d"][str(s)]
        print(f"bm3d sigma={s}: {e['psnr_mean']} dB on {e['n']} images", file=sys.stderr)


def _subset_mean(values: list, ref: list | None) -> tuple[float, int]:
    """Mean over the images where the reference (BM3D) exists, and that count."""
    idx = [i for i in range(len(values)) if ref is None or ref[i] is not None]
    return (float(np.mean([values[i] for i in idx])) if idx else float("nan")), len(idx)


def print_table(result: dict) -> None:
    """Prior vs BM3D on the same images (all of them unless BM3D ran out of time: see n)."""
    sigmas, files = result["sigmas_255"], result["images"]
    noisy = result["noisy_psnr_per_image"]
    print(f"one-step denoising PSNR (dB), dev images 01900-01949 ({len(files)}), mean over the n images")
    print(f"{'sigma':>7} {'prior':>8} {'PSNR':>7} {'BM3D':>7} {'noisy':>7} {'t':>4} {'n':>3}")
    rows = []
    for name, entry in result["priors"].items():
        rows += [(s, name, entry["sigmas"][str(s)]) for s in sigmas]
        rows += [(int(s), name + " x8", e) for s, e in entry.get("ensemble_x8", {}).items()]
    if not result["priors"]:
        rows = [(s, "-", None) for s in sigmas]
    for s, label, e in rows:
        bm = result["bm3d"].get(str(s), {}).get("psnr")
        if bm is not None and all(v is None for v in bm):
            bm = None  # no BM3D for this sigma: score the prior on all images
        b, n = _subset_mean(bm, bm) if bm else (float("nan"), len(files))
        p = _subset_mean(e["psnr"], bm)[0] if e else float("nan")
        nz = _subset_mean(noisy[str(s)], bm)[0]
        t = e["t"] if e else "-"
        print(f"{s:>3}/255 {label:>8} {p:7.2f} {b:7.2f} {nz:7.2f} {t:>4} {n:>3}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--priors", nargs="*", default=["gray", "tiny"])
    ap.add_argument("--sigmas", nargs="+", type=int, default=[15, 25, 50], help="noise std in 1/255 units")
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "prior_denoise.json")
    ap.add_argument(
        "--reuse-bm3d", action="store_true", help="take per-image BM3D PSNR from --out if it matches"
    )
    ap.add_argument("--no-bm3d", action="store_true")
    ap.add_argument("--bm3d-workers", type=int, default=2)
    ap.add_argument("--bm3d-minutes", type=float, default=None, help="stop starting BM3D runs after this")
    ap.add_argument("--bm3d-from", type=Path, default=None, help="JSON to reuse BM3D from (default: --out)")
    ap.add_argument("--table-only", action="store_true", help="merge BM3D from --bm3d-from into --out, print")
    ap.add_argument("--samples-prior", default="gray")
    ap.add_argument("--samples", type=Path, default=REPO / "docs" / "prior_samples_gray.png")
    ap.add_argument("--n-samples", type=int, default=16)
    ap.add_argument("--sample-size", type=int, default=96)
    ap.add_argument("--sample-steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (prior evaluations only; BM3D is CPU)")
    ap.add_argument(
        "--ensemble",
        nargs="*",
        type=int,
        default=[],
        help="also report these sigmas with the x8 flip/rotation self-ensemble (8x the cost)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    files = dev_images(args.limit)
    clean = [clean_amplitude(f) for f in files]
    names = [f.name for f in files]
    src = args.bm3d_from or args.out
    old = json.loads(src.read_text()) if (args.reuse_bm3d or args.table_only) and src.exists() else {}
    if args.table_only:
        result = json.loads(args.out.read_text())
        for k, v in old.get("bm3d", {}).items():
            if v.get("images") == result["images"]:
                result["bm3d"][k] = v
        print_table(result)
        _write(args.out, result)
        return
    result: dict = {
        "protocol": __doc__.split("\n\n")[1],
        "images": names,
        "sigmas_255": args.sigmas,
        "platform": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": args.threads,
            "machine": platform.machine(),
        },
        "bm3d": {},
        "priors": {},
    }
    noisy_by_sigma = {}
    for s in args.sigmas:
        rng = np.random.default_rng(1000 + s)
        noisy_by_sigma[s] = [noisy(a, s, rng) for a in clean]

    for s in args.sigmas:  # reuse complete or partial BM3D results computed on the same images
        prev = old.get("bm3d", {}).get(str(s))
        if prev and prev.get("images") == names:
            result["bm3d"][str(s)] = prev
    if not args.no_bm3d:
        run_bm3d(result, clean, noisy_by_sigma, args)

    for name in args.priors:
        prior = load(name).to(args.device)
        entry = {
            "weights": Path(prior.path).name if prior.path else name,  # never a machine path
            "parameters": sum(p.numel() for p in prior.net.parameters()),
            "training_steps": prior.config.get("training", {}).get("steps"),
            "sigmas": {},
        }
        for s in args.sigmas:
            t0 = time.time()
            den, t = prior_denoise(prior, noisy_by_sigma[s], s / 255)
            ps = [peak_signal_noise_ratio(a, d, data_range=1) for a, d in zip(clean, den, strict=True)]
            ab = float(prior.alphas_cumprod[t])
            entry["sigmas"][str(s)] = {
                "psnr_mean": float(np.mean(ps)),
                "psnr": [float(p) for p in ps],
                "t": t,
                "model_sigma_at_t": float(np.sqrt((1 - ab) / ab)),
                "seconds": round(time.time() - t0, 1),
            }
        for s in args.ensemble:
            t0 = time.time()
            den, t = prior_denoise(prior, noisy_by_sigma[s], s / 255, ensemble=True)
            ps = [peak_signal_noise_ratio(a, d, data_range=1) for a, d in zip(clean, den, strict=True)]
            entry.setdefault("ensemble_x8", {})[str(s)] = {
                "psnr_mean": float(np.mean(ps)),
                "t": t,
                "psnr": [float(p) for p in ps],
                "seconds": round(time.time() - t0, 1),
            }
        result["priors"][name] = entry

    result["noisy_psnr_per_image"] = {
        str(s): [
            float(peak_signal_noise_ratio(a, np.clip(y, 0, 1), data_range=1))
            for a, y in zip(clean, noisy_by_sigma[s], strict=True)
        ]
        for s in args.sigmas
    }

    print_table(result)

    if args.samples_prior and args.samples_prior in args.priors and args.n_samples > 0:
        t0 = time.time()
        prior = load(args.samples_prior).to(args.device)
        size = args.sample_size - args.sample_size % prior.stride
        samples = ddim_samples(prior, args.n_samples, size, args.sample_steps)
        save_grid(samples, args.samples)
        result["samples"] = {
            "prior": args.samples_prior,
            "path": str(args.samples),
            "n": args.n_samples,
            "size": size,
            "ddim_steps": args.sample_steps,
            "seconds": round(time.time() - t0, 1),
        }
        print(f"samples: {args.samples}", file=sys.stderr)

    _write(args.out, result)


def _write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)


if __name__ == "__main__":
    main()
