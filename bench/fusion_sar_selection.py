"""Selective gradient-weight rules for the fusion: can keeping SAR's significant structure win Qabf?

The default rule (:class:`geodiff.solvers.fusion.FusionWeights`) splits the gradient weights c, d per
pixel by the two images' local gradient energy weighted by the scene's PCA shares. On the SEN12MS-CR
Ariake Sea pair it keeps A's edges and few of B's (Qabf below the Laplacian pyramid's). This script
measures rules that give B's gradient the weight only where B's structure is *significant*, and the
scale-free alternatives, against the default, on the Ariake Sea pair and on the other datasets:

* **CFAR on the gradient energy**: the statistic E_B / mu_B^2 (local gradient energy of the SAR
  amplitude over its squared local mean, both in a Gaussian window of 2 px; scale-free under
  multiplicative speckle, computed on the amplitude in its own units, i.e. B plus the stretch's
  offset lo / (hi - lo)) is compared with its distribution on a flat field of white gamma speckle
  of the pair's looks, despeckled by the same Lee filter (7 x 7) and taken to amplitude (Monte
  Carlo, 512 x 512, seeded); pixels above the (1 - Pfa) quantile are significant;
* **CFAR on the orientation coherence** of B's structure tensor (|lambda1 - lambda2| / (lambda1 +
  lambda2), same window): speckle has incoherent gradients, lines and shores coherent ones;
* where significant, either B takes the whole gradient weight ("hard") or the plain energy split
  without the PCA handicap applies ("plain"); elsewhere the default rule;
* the hard energy split (power 8 instead of 2) with the shares at powers 1, 0.75, 0.6;
* for reference, rules that are NOT scale-free (a fixed fraction of the pixels): the top q of B's
  Sobel magnitude (Qabf's own weight for B) or of E_B / E_A take B's gradient.

Every row is prior-free (:func:`geodiff.solvers.fusion.weighted_prox`, 400 Chambolle-Pock iterations,
from the Laplacian-pyramid start with the PCA low-pass weights: ``fusion_ablation.py``'s "no prior"
row, which tracked the DPS rows within about 0.01 on Qabf and VIFF, not on MI: the default rule
scores MI 3.84 prior-free and 6.02 by DPS on Sen1Floods11), on Lee-despeckled SAR as `geodiff fuse`
uses. Besides PROTOCOL §3 each row reports Qabf's two halves (Q^AF and Q^BF, each weighted by its
source's Sobel magnitude) and VIF(A, F). The significance lines say which share of the pixels, and
of B's Sobel weight, each CFAR test flags.

    .venv/bin/python bench/fusion_sar_selection.py [--datasets sen12mscr-sea,bigearthnet,sen1floods11]

Prints the tables and writes bench/results/fusion_sar_selection.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fusion import SHARED, pairs  # noqa: E402

from geodiff.apps.fuse import fuse_arrays  # noqa: E402
from geodiff.apps.fuse.arrays import scene_share  # noqa: E402
from geodiff.apps.fuse.baselines import BASELINES, laplacian_fusion  # noqa: E402
from geodiff.apps.fuse.scales import robust_unit  # noqa: E402
from geodiff.apps.fuse.scene import load_pair  # noqa: E402
from geodiff.likelihoods import _grad2d  # noqa: E402
from geodiff.solvers.fusion import FusionWeights, _gaussian_blur, gradient_energy, weighted_prox  # noqa: E402
from sensors.fusion_quality import _edge_preservation, _sobel, fusion_report, vif  # noqa: E402
from sensors.speckle_filters import lee  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WINS = ("EN", "MI", "SSIM", "Qabf", "VIFF")
SIGMA = 2.0  # px, the default rule's window
RULE = FusionWeights()
PLAIN = FusionWeights(share_power=0.0)


# ---- the data -------------------------------------------------------------------------------------
@dataclass
class Pair:
    """One pair as the fusion sees it: A, B (H, W) float64 in [0, 1], the looks of the SAR that B
    was made from and B's stretch offset lo / (hi - lo) (B + offset is proportional to the amplitude)."""

    dataset: str
    name: str
    a: np.ndarray
    b: np.ndarray
    looks: float
    offset: float


def load(datasets: list[str]) -> list[Pair]:
    """The pairs of ``datasets`` with Lee-despeckled SAR, through `geodiff fuse`'s pipeline."""
    out = []
    for ds, name, opt, sar in pairs(SHARED):
        if ds not in datasets:
            continue
        pair = load_pair(opt, sar, despeckle_sar="lee", seed=0)
        res = fuse_arrays(pair.optical, pair.sar, sar_units="intensity", rgb=pair.rgb, method="average",
                          despeckle_sar=None, return_details=True)  # fmt: skip
        v = res.valid
        amp = np.sqrt(np.maximum(pair.sar, 0))
        scale = robust_unit(amp, v & np.isfinite(amp))
        a, b = np.where(v, res.optical, 0.0), np.where(v, res.sar, 0.0)
        out.append(Pair(ds, name, a, b, float(pair.despeckle_sar["looks"]), scale.lo / (scale.hi - scale.lo)))
    return out


# ---- significance statistics ------------------------------------------------------------------------
def energy_ratio(amp: torch.Tensor) -> torch.Tensor:
    """E / mu^2 of an amplitude image (B, 1, H, W): local gradient energy over the squared local mean."""
    return gradient_energy(amp, SIGMA) / _gaussian_blur(amp, SIGMA).clamp_min(1e-12) ** 2


def coherence(x: torch.Tensor) -> torch.Tensor:
    """Structure-tensor coherence |l1 - l2| / (l1 + l2) in [0, 1] of (B, 1, H, W) (window SIGMA)."""
    gx, gy = _grad2d(x)
    jxx, jyy, jxy = (_gaussian_blur(v, SIGMA) for v in (gx * gx, gy * gy, gx * gy))
    return torch.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy).clamp_min(1e-12)


STATS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"energy": energy_ratio, "coherence": coherence}


@functools.lru_cache(maxsize=64)
def speckle_threshold(stat: str, looks: float, pfa: float, n: int = 512, seed: int = 0) -> float:
    """(1 - pfa) quantile of ``stat`` on a flat field of white gamma speckle (``looks``), Lee-filtered
    (7 x 7, as the pipeline) and taken to amplitude: the CFAR threshold (Monte Carlo, border cut)."""
    intensity = np.random.default_rng(seed).gamma(looks, 1.0 / looks, size=(n, n))
    amp = torch.from_numpy(np.sqrt(lee(intensity, looks=looks, window=7))).float()[None, None]
    s = STATS[stat](amp)[0, 0, 8:-8, 8:-8].numpy()
    return float(np.quantile(s, 1 - pfa))


def significant(stat: str, pfa: float, b: torch.Tensor, pair: Pair) -> torch.Tensor:
    """0/1 map (like b) of the pixels where B's ``stat`` exceeds the speckle's CFAR threshold."""
    x = b + pair.offset if stat == "energy" else b
    return (STATS[stat](x) > speckle_threshold(stat, round(pair.looks, 3), pfa)).to(b.dtype)


# ---- rules: (o, r, share, pair) -> (a, b, c, d) --------------------------------------------------------
Maps = tuple
Rule = Callable[[torch.Tensor, torch.Tensor, tuple[float, float], Pair], Maps]


def default_rule(rule: FusionWeights = RULE) -> Rule:
    return lambda o, r, share, pair: rule.maps(o, r, share)


def selected(mask_fn: Callable[[torch.Tensor, torch.Tensor, Pair], torch.Tensor], mode: str) -> Rule:
    """The default rule, and where ``mask_fn`` is 1: B takes the gradient ("hard") or the plain split."""

    def fn(o: torch.Tensor, r: torch.Tensor, share: tuple[float, float], pair: Pair) -> Maps:
        a, b, c, d = RULE.maps(o, r, share)
        m = mask_fn(o, r, pair)
        if mode == "hard":
            return a, b, c * (1 - m), d * (1 - m) + RULE.gradient * m
        _, _, c2, d2 = PLAIN.maps(o, r, share)
        return a, b, c * (1 - m) + c2 * m, d * (1 - m) + d2 * m

    return fn


def top(stat: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], q: float):  # noqa: ANN201
    """Mask of the top fraction ``q`` of a statistic of (o, r) (not scale-free: reference only)."""

    def mask(o: torch.Tensor, r: torch.Tensor, pair: Pair) -> torch.Tensor:
        s = stat(o, r)
        return (s > torch.quantile(s.flatten()[::3], 1 - q)).to(r.dtype)

    return mask


def _sobel_b(o: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(_sobel(r[0, 0].double().numpy())[0]).to(r.dtype)[None, None]


def _energy_b_over_a(o: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    return gradient_energy(r, SIGMA) / gradient_energy(o, SIGMA).clamp_min(1e-12)


def _cfar(stat: str, pfa: float):  # noqa: ANN202
    return lambda o, r, pair: significant(stat, pfa, r, pair)


ROWS: dict[str, Rule] = {"default rule": default_rule()}
for _stat in ("energy", "coherence"):
    for _pfa in (1e-2, 1e-3):
        for _mode in ("hard", "plain"):
            ROWS[f"CFAR {_stat} Pfa {_pfa:g}, {_mode}"] = selected(_cfar(_stat, _pfa), _mode)
for _sp in (1.0, 0.75, 0.6):
    ROWS[f"hard split (power 8), shares ^{_sp:g}"] = default_rule(FusionWeights(power=8.0, share_power=_sp))
for _q in (0.05, 0.1, 0.2):
    ROWS[f"top {_q:g} of B's Sobel magnitude, hard"] = selected(top(_sobel_b, _q), "hard")
for _q in (0.1, 0.2, 0.35):
    ROWS[f"top {_q:g} of E_B / E_A, hard"] = selected(top(_energy_b_over_a, _q), "hard")


# ---- runs and scores ---------------------------------------------------------------------------------
def _pad(x: np.ndarray, m: int = 8) -> torch.Tensor:
    t = torch.from_numpy(x).float()[None, None]
    return torch.nn.functional.pad(t, (0, -x.shape[1] % m, 0, -x.shape[0] % m), mode="reflect")


def fuse(pair: Pair, rule: Rule, iters: int = 400) -> np.ndarray:
    """F (H, W) in [0, 1]: the prior-free fusion (prox of the Laplacian start) with ``rule``'s weights."""
    o, r = _pad(pair.a), _pad(pair.b)
    share = scene_share(pair.a, pair.b, np.ones(pair.a.shape, bool))
    start = laplacian_fusion(o[0, 0].double().numpy(), r[0, 0].double().numpy(), low_weights=share)
    f = weighted_prox(torch.from_numpy(start).float()[None, None], o, r, rule(o, r, share, pair), iters)
    h, w = pair.a.shape
    return f.clamp(0, 1)[0, 0, :h, :w].double().numpy()


def scores(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """PROTOCOL §3 scores plus Q^AF, Q^BF (each weighted by its source's Sobel magnitude) and VIF(A, F)."""
    out = fusion_report(f, a, b)
    (ga, aa), (gb, ab), (gf, af) = _sobel(a), _sobel(b), _sobel(f)
    out["QAF"] = float((_edge_preservation(ga, aa, gf, af) * ga).sum() / max(ga.sum(), 1e-30))
    out["QBF"] = float((_edge_preservation(gb, ab, gf, af) * gb).sum() / max(gb.sum(), 1e-30))
    out["VIF_A"] = vif(a, f)
    return out


COLUMNS = ("EN", "MI", "SSIM", "Qabf", "VIFF", "QAF", "QBF", "VIF_A")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="sen12mscr-sea,bigearthnet,sen1floods11")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fusion_sar_selection.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    datasets = args.datasets.split(",")
    data = load(datasets)
    doc: dict = {"datasets": datasets, "significance": {}, "tables": {}}
    for ds in datasets:
        group = [p for p in data if p.dataset == ds]
        base = {m: [fusion_report(BASELINES[m](p.a, p.b), p.a, p.b) for p in group] for m in BASELINES}
        bar = {k: max(float(np.mean([s[k] for s in base[m]])) for m in base) for k in WINS}
        sig = {}
        for stat in STATS:
            for pfa in (1e-2, 1e-3):
                px, wb = [], []
                for p in group:
                    m = significant(stat, pfa, _pad(p.b), p)[0, 0, : p.b.shape[0], : p.b.shape[1]].numpy() > 0
                    gb = _sobel(p.b)[0]
                    px.append(m.mean())
                    wb.append(gb[m].sum() / gb.sum())
                sig[f"{stat} Pfa {pfa:g}"] = {"pixels": float(np.mean(px)), "B_weight": float(np.mean(wb))}
        table = {}
        for name, rule in ROWS.items():
            t = time.perf_counter()
            rows = [scores(fuse(p, rule), p.a, p.b) for p in group]
            row = {k: float(np.mean([r[k] for r in rows])) for k in COLUMNS}
            row["wins"] = [k for k in WINS if row[k] > bar[k]]
            table[name] = row
            line = f"{ds:<15}{name:<44}" + " ".join(f"{k} {row[k]:.3f}" for k in COLUMNS)
            print(
                f"{line}  wins {len(row['wins'])}  {time.perf_counter() - t:.1f}s",
                file=sys.stderr,
                flush=True,
            )
        doc["significance"][ds] = sig
        doc["tables"][ds] = {"best_baseline": bar, "rows": table}
        print(f"\n{ds} ({len(group)} pair{'s' if len(group) > 1 else ''}); best baseline: "
              + ", ".join(f"{k} {v:.3f}" for k, v in bar.items()))  # fmt: skip
        for k, v in sig.items():
            print(f"  CFAR {k} flags {v['pixels']:.3f} of the pixels, {v['B_weight']:.3f} of B's Sobel")
        print("| rule | " + " | ".join(COLUMNS) + " | wins |")
        print("|---|" + "---:|" * (len(COLUMNS) + 1))
        for name, r in table.items():
            print(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in COLUMNS) + f" | {len(r['wins'])} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
