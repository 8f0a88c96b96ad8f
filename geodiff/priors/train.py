"""Training loop for the diffusion priors: AdamW, EMA, validation, resumable safetensors checkpoints.

The run folder holds everything needed to resume (checkpoint.safetensors + state.json), a loss
log (loss_log.csv) and, after each save, the exported model (<name>.safetensors + <name>.json)
built from the EMA weights. A wall-clock budget ends the run cleanly; the learning-rate cosine
follows whichever of the step budget or the time budget is further along, so a time-limited
run still anneals.
"""

from __future__ import annotations

import copy
import csv
import datetime as _dt
import json
import logging
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import geodiff
from geodiff.priors.data import NORMALISATION, CropSampler, expand_sources, load_amplitude
from geodiff.priors.schedule import make_schedule, q_sample, v_target
from geodiff.priors.unet import UNet, UNetConfig, count_parameters
from geodiff.priors.weights_io import load_json, load_tensors, save_json, save_tensors

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in state.json and the model config."""

    sources: list[str]
    out: str
    name: str = "prior"
    val_sources: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    steps: int = 10000
    max_minutes: float | None = None
    tile: int = 64
    batch: int = 16
    width: int = 32
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = 1
    attention: bool = False
    prediction: str = "eps"
    schedule: str = "cosine"
    T: int = 1000
    t_focus: tuple[int, int] = (10, 320)  # extra sampling weight on these timesteps
    t_focus_prob: float = 0.6
    lr: float = 5e-4
    min_lr_ratio: float = 0.05
    warmup: int = 200
    weight_decay: float = 0.01
    ema: float = 0.999
    val_every: int = 200
    val_crops: int = 32
    save_every: int = 200
    threads: int | None = None
    device: str = "cpu"
    seed: int = 0
    weights_dtype: str = "float32"  # of the exported model; float16 halves the file (loaded as float32)

    def unet(self) -> UNetConfig:
        return UNetConfig(
            width=self.width,
            channel_mult=list(self.channel_mult),
            num_res_blocks=self.num_res_blocks,
            attention=self.attention,
        )


def sample_timesteps(n: int, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Mixture of uniform over [0, T) and uniform over the focus range (low/medium noise)."""
    lo, hi = cfg.t_focus
    u = torch.randint(0, cfg.T, (n,), generator=gen)
    f = torch.randint(lo, min(hi, cfg.T), (n,), generator=gen)
    pick = torch.rand(n, generator=gen) < cfg.t_focus_prob
    return torch.where(pick, f, u)


def _target(cfg: TrainConfig, abar: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor):
    if cfg.prediction == "eps":
        return eps
    if cfg.prediction == "v":
        return v_target(abar, x0, t, eps)
    if cfg.prediction == "x0":
        return x0
    raise ValueError(f"unknown prediction {cfg.prediction!r}; use eps, v or x0")


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm.detach(), 1 - decay)


def _lr(cfg: TrainConfig, step: int, elapsed: float) -> float:
    progress = step / max(cfg.steps, 1)
    if cfg.max_minutes:
        progress = max(progress, elapsed / (60 * cfg.max_minutes))
    progress = min(progress, 1.0)
    warm = min(1.0, (step + 1) / max(cfg.warmup, 1))
    cos = 0.5 * (1 + math.cos(math.pi * progress))
    return cfg.lr * warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


class _ValSet:
    """A fixed validation batch (crops, timesteps and noise drawn once) so losses are comparable."""

    def __init__(self, sampler: CropSampler, cfg: TrainConfig, abar: torch.Tensor) -> None:
        gen = torch.Generator().manual_seed(1234)
        self.x0 = sampler.batch(cfg.val_crops)
        self.t = sample_timesteps(cfg.val_crops, cfg, gen)
        self.eps = torch.randn(self.x0.shape, generator=gen)
        self.x_t = q_sample(abar, self.x0, self.t, self.eps).float()
        self.target = _target(cfg, abar, self.x0, self.t, self.eps).float()

    @torch.no_grad()
    def loss(self, model: nn.Module, device: torch.device, chunk: int = 16) -> float:
        model.eval()
        tot = 0.0
        for i in range(0, len(self.x_t), chunk):
            out = model(self.x_t[i : i + chunk].to(device), self.t[i : i + chunk].to(device))
            tot += float((out.float().cpu() - self.target[i : i + chunk]).pow(2).sum())
        model.train()
        return tot / self.target.numel()


def _opt_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = opt.state_dict()
    tensors = {f"opt.{i}.{k}": v for i, st in sd["state"].items() for k, v in st.items()}
    return tensors, sd["param_groups"]


def _opt_from_tensors(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, i, k = key.split(".", 2)
            state.setdefault(int(i), {})[k] = v
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def model_config(cfg: TrainConfig, extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON config shipped next to the exported weights."""
    unet = cfg.unet()
    return {
        "format_version": FORMAT_VERSION,
        "name": cfg.name,
        "architecture": "unet",
        "unet": unet.to_dict(),
        "channels": unet.in_channels,
        "stride": unet.stride,
        "prediction": cfg.prediction,
        "schedule": {"name": cfg.schedule, "T": cfg.T},
        "domain": "amplitude",
        "normalisation": dict(NORMALISATION),
        "tile": cfg.tile,
        "weights_dtype": cfg.weights_dtype,
        "geodiff_version": geodiff.__version__,
        "torch_version": torch.__version__,
        **extra,
    }


def train(
    cfg: TrainConfig, resume: bool = False, progress: bool = True, stop_after: int | None = None
) -> dict[str, Any]:
    """Train (or resume) a prior; returns a summary dict (steps, losses, paths).

    ``stop_after`` ends this call after that many steps (checkpointed) without changing the
    schedule, which stays defined by ``cfg.steps``: resuming later gives the uninterrupted run.
    """
    out = Path(cfg.out)
    ckpt, state_path = out / "checkpoint.safetensors", out / "state.json"
    if resume:
        if not state_path.exists():
            raise FileNotFoundError(f"{state_path}: nothing to resume; run without --resume to start")
        saved = load_json(state_path)
        keep = {
            "steps": cfg.steps,
            "max_minutes": cfg.max_minutes,
            "threads": cfg.threads,
            "device": cfg.device,
        }
        cfg = TrainConfig(**{**saved["config"], **{k: v for k, v in keep.items() if v is not None}})
        cfg.t_focus = tuple(cfg.t_focus)
    elif state_path.exists():
        raise FileExistsError(f"{out}: already holds a training run; pass --resume or choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":  # fixed crop size: let cuDNN pick the fastest convolution kernels
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    files = expand_sources(cfg.sources, cfg.exclude)
    val_files = expand_sources(cfg.val_sources, cfg.exclude) if cfg.val_sources else []
    val_set = {f.resolve() for f in val_files}
    files = [f for f in files if f.resolve() not in val_set]  # validation images never train
    t0 = time.time()
    sampler = CropSampler([load_amplitude(f) for f in files], cfg.tile, seed=cfg.seed)
    val_sampler = (
        CropSampler([load_amplitude(f) for f in val_files], cfg.tile, seed=99) if val_files else None
    )
    log.info(
        "loaded %d training images (%d validation) in %.1fs", len(files), len(val_files), time.time() - t0
    )

    abar = make_schedule(cfg.schedule, cfg.T)
    model = UNet(cfg.unet()).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    fused = device.type in ("cpu", "cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    # noise drawn where the model runs: on a GPU, CPU randn + copy would cost more than the step
    noise_gen = gen if device.type == "cpu" else torch.Generator(device).manual_seed(cfg.seed + 2)
    val = _ValSet(val_sampler or CropSampler(sampler.images, cfg.tile, seed=99), cfg, abar)

    step, elapsed, history = 0, 0.0, []
    median = None
    if resume:
        tensors = load_tensors(ckpt)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        _opt_from_tensors(opt, tensors, saved["optimizer_param_groups"])
        gen.set_state(tensors["rng.torch_gen"])
        if noise_gen is not gen and "rng.noise_gen" in tensors:
            noise_gen.set_state(tensors["rng.noise_gen"])
        torch.set_rng_state(tensors["rng.torch_cpu"])
        sampler.set_state(saved["sampler_rng"])
        step, elapsed, history = saved["step"], saved["elapsed_s"], saved["history"]
        median = saved.get("amplitude_median")
        log.info("resumed %s at step %d", out, step)
    if median is None:
        median = sampler.median_amplitude()

    stop = {"flag": False}

    def _on_term(signum, frame):  # finish the step, save, exit cleanly
        stop["flag"] = True

    old = signal.signal(signal.SIGTERM, _on_term) if _is_main_thread() else None

    def save() -> None:
        opt_t, groups = _opt_to_tensors(opt)
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors |= {f"ema.{k}": v for k, v in ema.state_dict().items()}
        tensors |= opt_t
        tensors["rng.torch_gen"] = gen.get_state()
        if noise_gen is not gen:
            tensors["rng.noise_gen"] = noise_gen.get_state()
        tensors["rng.torch_cpu"] = torch.get_rng_state()
        save_tensors(ckpt, tensors)
        save_json(
            state_path,
            {
                "step": step,
                "elapsed_s": elapsed,
                "config": asdict(cfg),
                "optimizer_param_groups": groups,
                "sampler_rng": sampler.state(),
                "amplitude_median": median,
                "history": history,
            },
        )
        export(cfg, ema, out, step, elapsed, history, median, files, val_files)

    log_path = out / "loss_log.csv"
    new_log = not log_path.exists()
    logf = open(log_path, "a", newline="")  # noqa: SIM115 - kept open for the whole run
    writer = csv.writer(logf)
    if new_log:
        writer.writerow(["step", "elapsed_s", "lr", "train_loss", "val_loss_ema", "val_loss_raw"])

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.name}", unit="step", dynamic_ncols=True)
    autocast = device.type == "cuda"
    run_loss, n_loss = 0.0, 0
    t_start = time.time() - elapsed
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    try:
        while step < end and not stop["flag"]:
            elapsed = time.time() - t_start
            if cfg.max_minutes and elapsed >= 60 * cfg.max_minutes:
                log.info("time budget of %.1f min reached at step %d", cfg.max_minutes, step)
                break
            lr = _lr(cfg, step, elapsed)
            for g in opt.param_groups:
                g["lr"] = lr
            x0 = sampler.batch(cfg.batch).to(device, non_blocking=True)
            t = sample_timesteps(cfg.batch, cfg, gen).to(device)
            eps = torch.randn(x0.shape, generator=noise_gen, device=device)
            x_t = q_sample(abar, x0, t, eps).float()
            target = _target(cfg, abar, x0, t, eps).float()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                pred = model(x_t, t)
            loss = (pred.float() - target).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            _ema_update(ema, model, min(cfg.ema, (1 + step) / (10 + step)))
            run_loss += loss.item()
            n_loss += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{run_loss / n_loss:.4f}", lr=f"{lr:.1e}")
            last = step >= end
            if step % cfg.val_every == 0 or last:
                v_ema, v_raw = val.loss(ema, device), val.loss(model, device)
                elapsed = time.time() - t_start
                rec = {
                    "step": step,
                    "elapsed_s": round(elapsed, 1),
                    "lr": lr,
                    "train_loss": run_loss / n_loss,
                    "val_loss_ema": v_ema,
                    "val_loss_raw": v_raw,
                }
                history.append(rec)
                writer.writerow(list(rec.values()))
                logf.flush()
                log.info(
                    "step %d train %.4f val(ema) %.4f val(raw) %.4f", step, rec["train_loss"], v_ema, v_raw
                )
                run_loss, n_loss = 0.0, 0
            if step % cfg.save_every == 0:
                elapsed = time.time() - t_start
                save()
        elapsed = time.time() - t_start
        if not history or history[-1]["step"] != step:
            v_ema, v_raw = val.loss(ema, device), val.loss(model, device)
            rec = {
                "step": step,
                "elapsed_s": round(elapsed, 1),
                "lr": _lr(cfg, step, elapsed),
                "train_loss": run_loss / max(n_loss, 1),
                "val_loss_ema": v_ema,
                "val_loss_raw": v_raw,
            }
            history.append(rec)
            writer.writerow(list(rec.values()))
        save()
    finally:
        logf.close()
        if bar is not None:
            bar.close()
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return {
        "step": step,
        "elapsed_s": elapsed,
        "history": history,
        "out": str(out),
        "model": str(out / f"{cfg.name}.safetensors"),
        "parameters": count_parameters(model),
    }


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def export(
    cfg: TrainConfig,
    ema: nn.Module,
    out: Path,
    step: int,
    elapsed: float,
    history: list[dict],
    median: float,
    files: list[Path],
    val_files: list[Path],
) -> Path:
    """Write <out>/<name>.safetensors (EMA weights) and <name>.json (model config)."""
    last = history[-1] if history else {}
    extra = {
        "amplitude_median": median,
        "parameters": count_parameters(ema),
        "training": {
            "steps": step,
            "elapsed_s": round(elapsed, 1),
            "batch": cfg.batch,
            "tile": cfg.tile,
            "lr": cfg.lr,
            "ema": cfg.ema,
            "t_focus": list(cfg.t_focus),
            "t_focus_prob": cfg.t_focus_prob,
            "device": cfg.device,
            "threads": cfg.threads,
            "final_train_loss": last.get("train_loss"),
            "final_val_loss_ema": last.get("val_loss_ema"),
            "final_val_loss_raw": last.get("val_loss_raw"),
            "exported_weights": "ema",
            "sources": list(cfg.sources),
            "exclude": list(cfg.exclude),
            "validation": [os.path.basename(str(f)) for f in val_files],
            "n_files": len(files),
            "files": [_short(f) for f in files],
        },
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path = out / f"{cfg.name}.safetensors"
    save_tensors(
        path,
        _cast(ema.state_dict(), cfg.weights_dtype),
        metadata={"format": "geodiff-prior", "name": cfg.name},
    )
    save_json(out / f"{cfg.name}.json", model_config(cfg, extra))
    return path


def _cast(state: dict[str, torch.Tensor], dtype: str) -> dict[str, torch.Tensor]:
    """Floating tensors to the export dtype (float32 or float16); the loader casts back to float32."""
    if dtype not in ("float32", "float16"):
        raise ValueError(f"weights dtype {dtype!r} is not supported; use float32 or float16")
    dt = getattr(torch, dtype)
    return {k: v.to(dt) if v.is_floating_point() else v for k, v in state.items()}


def _short(p: Path) -> str:
    parts = Path(p).parts
    return "/".join(parts[-3:]) if len(parts) >= 3 else str(p)


def summary_json(result: dict) -> str:
    return json.dumps(result, default=str)


__all__ = ["TrainConfig", "train", "export", "sample_timesteps", "np"]


def export_best(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Re-export a run's model from whichever of the EMA or raw weights has the lower final validation loss.

    Why: with a short run (a CPU budget) a 0.999 EMA still remembers early, worse weights; once the
    learning rate has annealed the raw weights can be better. The choice is recorded in the config.
    """
    out = Path(run_dir)
    saved = load_json(out / "state.json")
    cfg = TrainConfig(**saved["config"])
    last = saved["history"][-1]
    which = "raw" if last["val_loss_raw"] < last["val_loss_ema"] else "ema"
    tensors = load_tensors(out / "checkpoint.safetensors")
    prefix = "model." if which == "raw" else "ema."
    net = UNet(cfg.unet())
    net.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    name = out / f"{cfg.name}.json"
    config = load_json(name)
    save_tensors(
        out / f"{cfg.name}.safetensors",
        _cast(net.state_dict(), cfg.weights_dtype),
        metadata={"format": "geodiff-prior", "name": cfg.name},
    )
    config["training"]["exported_weights"] = which
    config["training"]["final_val_loss_ema"] = last["val_loss_ema"]
    config["training"]["final_val_loss_raw"] = last["val_loss_raw"]
    save_json(name, config)
    return {"weights": which, "step": saved["step"], **last}
