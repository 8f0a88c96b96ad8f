"""How far below 1 the ratio mean of the best (posterior-mean) despeckler lies: PROTOCOL §2 against
the Bayes estimate, in closed form.

    .venv/bin/python bench/ratio_mean_bound.py            # table; results/ratio_mean_bound.json
    .venv/bin/python bench/ratio_mean_bound.py --dev 8    # and on 8 PROTOCOL §1 images (shared data)

Model (Frery et al. 1997, the G0 intensity model of heterogeneous SAR clutter): reflectivity
x ~ InvGamma(alpha, alpha - 1) (mean 1, texture variance 1 / (alpha - 2)), y = x n with speckle
n ~ Gamma(L, 1 / L). The posterior is InvGamma(alpha + L, alpha - 1 + L y), so

* the posterior mean (the MMSE estimate, zero radiometric bias) x_mmse = (alpha - 1 + L y) / (alpha + L - 1)
  has ratio mean E[y / x_mmse] = (alpha + L - 1) / (alpha + L) < 1;
* the posterior harmonic mean 1 / E[1/x | y] = (alpha - 1 + L y) / (alpha + L) has ratio mean 1 exactly
  (for any prior: E[y E[1/x | y]] = E[y / x] = E[n] = 1) but the bias 10 log10((alpha + L - 1) / (alpha + L)).

So an estimate that uses the pixel it estimates cannot in general have both: the ratio mean of the
posterior mean falls short of 1 by about the posterior's squared coefficient of variation, which at
one look is large wherever the scene is textured. Each closed form is checked here against Monte Carlo
(10^6 draws) and against 1-D quadrature over the G0 density of y.

``--dev N``: the same question where the truth is known, on the first N PROTOCOL §1 dev images with white
one-look speckle: the ratio mean of the truth itself (1 up to sampling), of ``geodiff despeckle`` at its
CPU default (through the CLI), of Lee 7 x 7 and of BM3D-log, with each estimate's bias and PSNR.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy import integrate, special

OUT = Path(__file__).resolve().parent / "results" / "ratio_mean_bound.json"


def g0_density(y: float, alpha: float, looks: float) -> float:
    """Density of y = x n, x ~ InvGamma(alpha, alpha - 1), n ~ Gamma(L, 1/L) (the G0 law)."""
    b, L = alpha - 1.0, looks
    logp = (L * math.log(L) + alpha * math.log(b) + (L - 1) * math.log(y) + special.gammaln(L + alpha)
            - special.gammaln(L) - special.gammaln(alpha) - (L + alpha) * math.log(b + L * y))  # fmt: skip
    return math.exp(logp)


def ratio_mean_quadrature(alpha: float, looks: float, harmonic: bool) -> float:
    """E[y / x_hat] by quadrature over the density of y (x_hat: posterior mean or harmonic mean)."""
    den = alpha + looks - (0.0 if harmonic else 1.0)

    def f(y: float) -> float:
        return y * den / (alpha - 1.0 + looks * y) * g0_density(y, alpha, looks)

    return integrate.quad(f, 0, np.inf, limit=200)[0]


def monte_carlo(alpha: float, looks: float, n: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """(ratio mean of the posterior mean, of the harmonic mean, bias of the harmonic mean in dB)."""
    x = (alpha - 1.0) / rng.gamma(alpha, 1.0, n)
    y = x * rng.gamma(looks, 1.0 / looks, n)
    mmse = (alpha - 1.0 + looks * y) / (alpha + looks - 1.0)
    harm = (alpha - 1.0 + looks * y) / (alpha + looks)
    return float(np.mean(y / mmse)), float(np.mean(y / harm)), 10 * math.log10(harm.mean() / y.mean())


def dev_rows(limit: int) -> list[dict]:
    """Ratio means, biases and PSNR on the first ``limit`` dev images (white L = 1 speckle, PROTOCOL §1)."""
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import despeckle_e2e as e2e
    import solvers_dev

    images = solvers_dev.load_dev(limit)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for (name, a), y in zip(images, solvers_dev.speckle(images, 1, len(images)), strict=True):
            src = e2e.write_tif(Path(tmp) / "in.tif", np.sqrt(y), "amplitude")
            ests = {"truth": a * a}
            for method in ("sar-dps", "lee"):
                out = Path(tmp) / f"{method}.tif"
                extra = ["--method", method] if method != "sar-dps" else []
                e2e.cli_despeckle(src, out, "--looks", "1", "--sensor", "sar-amplitude", *extra)
                ests[method] = e2e.read1(out) ** 2
            ests["bm3d-log"] = solvers_dev.bm3d_log(y, 1)
            row = {"image": name}
            for k, x in ests.items():
                row[k] = {"ratio_mean": float(np.mean(y / x)),
                          "bias_db": float(10 * np.log10(x.mean() / y.mean())),
                          "psnr": float(10 * np.log10(1 / np.mean((np.sqrt(x) - a) ** 2)))}  # fmt: skip
            rows.append(row)
            cells = [
                f"{row[k]['ratio_mean']:.3f} / {row[k]['bias_db']:+.2f} / {row[k]['psnr']:.2f}" for k in ests
            ]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=1_000_000)
    ap.add_argument("--dev", type=int, default=0, help="also the first N dev images (needs the shared data)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    print(
        "| L | alpha (texture CV) | ratio mean of the posterior mean: closed / quadrature / MC "
        "| harmonic mean: ratio (quadrature) / bias dB |"
    )
    print("|---|---|---|---|")
    for looks in (1.0, 2.0, 4.0):
        for alpha in (3.0, 5.0, 10.0, 20.0, 40.0):
            closed = (alpha + looks - 1) / (alpha + looks)
            quad = ratio_mean_quadrature(alpha, looks, harmonic=False)
            mc, mc_h, bias_h = monte_carlo(alpha, looks, args.draws, rng)
            quad_h = ratio_mean_quadrature(alpha, looks, harmonic=True)
            bias_closed = 10 * math.log10(closed)
            rows.append(dict(looks=looks, alpha=alpha, texture_cv=1 / math.sqrt(alpha - 2), closed=closed,
                             quadrature=quad, monte_carlo=mc, harmonic_quadrature=quad_h,
                             harmonic_monte_carlo=mc_h, harmonic_bias_db=bias_closed,
                             harmonic_bias_db_monte_carlo=bias_h))  # fmt: skip
            print(
                f"| {looks:g} | {alpha:g} ({1 / math.sqrt(alpha - 2):.2f}) | {closed:.3f} / {quad:.3f} / "
                f"{mc:.3f} | {quad_h:.3f} / {bias_closed:+.2f} |"
            )
    print(
        "ratio mean of the posterior mean >= 0.97 needs alpha + L >= 33.3 (texture CV <= "
        f"{1 / math.sqrt(33.3 - 1 - 2):.2f} at one look)"
    )
    dev = []
    if args.dev:
        print("\n| image | ratio mean / bias dB / PSNR dB: truth | geodiff despeckle | Lee 7x7 | BM3D-log |")
        print("|---|---|---|---|---|")
        dev = dev_rows(args.dev)
    Path(args.out).write_text(json.dumps({"g0": rows, "dev_L1": dev}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
