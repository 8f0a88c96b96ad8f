"""Training of the diffusion priors (DDPM eps/v/x0 objective, Ho et al. 2020): AdamW, EMA, validation,
resumable safetensors checkpoints.

The run folder holds everything needed to resume (checkpoint.safetensors + state.json), a loss
log (loss_log.csv) and, after each save, the exported model (<name>.safetensors + <name>.json)
built from the EMA weights. A wall-clock budget ends the run cleanly; the learning-rate cosine
(``torch.optim.lr_scheduler.LambdaLR``: linear warm-up, then cosine to ``min_lr_ratio``) follows
whichever of the step budget or the time budget is further along, so a time-limited run still anneals.
The EMA is ``torch.optim.swa_utils.AveragedModel`` with a decay that warms up as min(ema, (1+n)/(10+n)).
Training sources are recorded relative to the data root (never as absolute machine paths).
"""

from __future__ import annotations

import csv
import datetime as _dt
import logging
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import geodiff
from geodiff.device import resolve_device
from geodiff.errors import InvalidSettingError
from geodiff.priors.data import NORMALISATION, CropSampler, expand_sources, load_amplitude
from geodiff.priors.schedule import abar_at, make_schedule, q_sample, v_target
from geodiff.priors.unet import UNet, UNetConfig, count_parameters
from geodiff.priors.weights_io import load_json, load_state_into, load_tensors, save_json, save_tensors

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
    data_root: str | None = None  # sources are recorded relative to it (default: their common folder)
    init: str | None = None  # a prior (name or .safetensors) whose weights and architecture start the run

    def unet(self) -> UNetConfig:
        """The UNet architecture of this run."""
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


def noised_batch(
    cfg: TrainConfig, alphas_cumprod: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
):
    """(x_t, target) in float32 for clean crops x0 (B, 1, h, w), timesteps t (B,) and noise eps like x0.

    The target is eps, v (Salimans & Ho 2022) or x0 after ``cfg.prediction``; raises ValueError otherwise.
    """
    abar = abar_at(alphas_cumprod, t, x0)
    if cfg.prediction not in ("eps", "v", "x0"):
        raise InvalidSettingError(f"unknown prediction {cfg.prediction!r}; use eps, v or x0")
    target = {"eps": eps, "x0": x0}.get(cfg.prediction)
    if target is None:
        target = v_target(x0, eps, abar)
    return q_sample(abar, x0, eps).float(), target.float()


class _Clock:
    """Elapsed training time (seconds, including earlier sessions of a resumed run)."""

    def __init__(self, elapsed: float = 0.0) -> None:
        self.start = time.time() - elapsed

    def __call__(self) -> float:
        return time.time() - self.start


def lr_factor(cfg: TrainConfig, step: int, elapsed: float) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up times a cosine from 1 to ``min_lr_ratio``.

    The cosine's progress is the larger of step / steps and elapsed / max_minutes.
    """
    progress = step / max(cfg.steps, 1)
    if cfg.max_minutes:
        progress = max(progress, elapsed / (60 * cfg.max_minutes))
    warm = min(1.0, (step + 1) / max(cfg.warmup, 1))
    cos = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, clock: _Clock) -> LambdaLR:
    """LambdaLR over :func:`lr_factor` (its epoch is the training step; the time comes from ``clock``)."""
    return LambdaLR(opt, lambda step: lr_factor(cfg, step, clock()))


def make_ema(model: nn.Module, cfg: TrainConfig, step: list[int]) -> AveragedModel:
    """EMA of the model's parameters with decay min(cfg.ema, (1 + n) / (10 + n)) at training step n.

    ``step`` is a one-element list the training loop keeps current (no device sync for the decay).
    """

    def avg(ema_params, params, _n):
        get_ema_multi_avg_fn(min(cfg.ema, (1 + step[0]) / (10 + step[0])))(ema_params, params, _n)

    ema = AveragedModel(model, multi_avg_fn=avg)
    ema.update_parameters(model)  # first call copies the weights: the EMA starts at the initial model
    ema.module.requires_grad_(False)
    return ema


class _ValSet:
    """A fixed validation batch (crops, timesteps and noise drawn once) so losses are comparable."""

    def __init__(self, sampler: CropSampler, cfg: TrainConfig, abar: torch.Tensor) -> None:
        gen = torch.Generator().manual_seed(1234)
        self.x0 = sampler.batch(cfg.val_crops)
        self.t = sample_timesteps(cfg.val_crops, cfg, gen)
        self.eps = torch.randn(self.x0.shape, generator=gen)
        self.x_t, self.target = noised_batch(cfg, abar, self.x0, self.t, self.eps)

    @torch.no_grad()
    def loss(self, model: nn.Module, device: torch.device, chunk: int = 16) -> float:
        """Mean squared error of the model's prediction over the fixed batch."""
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
    """The JSON config shipped next to the exported weights (architecture, schedule, domain, ``extra``)."""
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


def _open_run(cfg: TrainConfig, resume: bool) -> tuple[TrainConfig, dict | None]:
    """The run's config (a resumed run keeps its own, except the budget and the machine) and saved state."""
    out = Path(cfg.out)
    state_path = out / "state.json"
    if not resume:
        if state_path.exists():
            raise FileExistsError(
                f"{out}: already holds a training run; pass --resume or choose another --out"
            )
        out.mkdir(parents=True, exist_ok=True)
        return cfg, None
    if not state_path.exists():
        raise FileNotFoundError(f"{state_path}: nothing to resume; run without --resume to start")
    saved = load_json(state_path)
    keep = {"steps": cfg.steps, "max_minutes": cfg.max_minutes, "threads": cfg.threads, "device": cfg.device}
    merged = TrainConfig(**{**saved["config"], **{k: v for k, v in keep.items() if v is not None}})
    merged.t_focus = tuple(merged.t_focus)
    return merged, saved


def _init_weights(cfg: TrainConfig) -> dict[str, torch.Tensor] | None:
    """Weights of ``cfg.init`` (fine-tuning start), with its architecture copied into ``cfg``.

    Raises FileNotFoundError for an unknown prior, InvalidSettingError when its prediction target or
    noise schedule differs from the run's (they cannot be fine-tuned into each other).
    """
    if not cfg.init:
        return None
    from geodiff.priors.registry import load

    prior = load(cfg.init)
    c = prior.config
    if c["prediction"] != cfg.prediction or c["schedule"] != {"name": cfg.schedule, "T": cfg.T}:
        raise InvalidSettingError(
            f"--init {cfg.init}: it predicts {c['prediction']!r} on a {c['schedule']} schedule, the run "
            f"{cfg.prediction!r} on {cfg.schedule}/{cfg.T}; pass --prediction {c['prediction']} or train "
            "without --init"
        )
    u = c["unet"]
    cfg.width, cfg.channel_mult = int(u["width"]), [int(m) for m in u["channel_mult"]]
    cfg.num_res_blocks, cfg.attention = int(u["num_res_blocks"]), bool(u["attention"])
    return prior.net.state_dict()


def _setup_torch(cfg: TrainConfig) -> torch.device:
    """Threads, seed and (on CUDA) cuDNN autotuning and TF32 for the fixed crop size."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def _load_data(cfg: TrainConfig) -> tuple[CropSampler, CropSampler | None, list[Path], list[Path]]:
    """Training and validation crop samplers; validation images never train."""
    files = expand_sources(cfg.sources, cfg.exclude)
    val_files = expand_sources(cfg.val_sources, cfg.exclude) if cfg.val_sources else []
    val_set = {f.resolve() for f in val_files}
    files = [f for f in files if f.resolve() not in val_set]
    t0 = time.time()
    sampler = CropSampler([load_amplitude(f) for f in files], cfg.tile, seed=cfg.seed)
    val = CropSampler([load_amplitude(f) for f in val_files], cfg.tile, seed=99) if val_files else None
    log.info(
        "loaded %d training images (%d validation) in %.1fs", len(files), len(val_files), time.time() - t0
    )
    return sampler, val, files, val_files


class _Run:
    """The state of one training run: model, EMA, optimiser, LR schedule, generators, data and history."""

    def __init__(self, cfg: TrainConfig, device: torch.device, data: tuple) -> None:
        self.cfg, self.device, self.out = cfg, device, Path(cfg.out)
        self.sampler, val_sampler, self.files, self.val_files = data
        self.abar = make_schedule(cfg.schedule, cfg.T)
        self.model = UNet(cfg.unet()).to(device)
        self.step_ref = [0]
        self.ema = make_ema(self.model, cfg, self.step_ref)
        fused = device.type in ("cpu", "cuda")
        self.opt = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused
        )
        self.clock = _Clock()
        self.sched = make_scheduler(self.opt, cfg, self.clock)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        # noise drawn where the model runs: on a GPU, CPU randn + copy would cost more than the step
        self.noise_gen = (
            self.gen if device.type == "cpu" else torch.Generator(device).manual_seed(cfg.seed + 2)
        )
        self.val = _ValSet(val_sampler or CropSampler(self.sampler.images, cfg.tile, seed=99), cfg, self.abar)
        self.step, self.history, self.median = 0, [], None

    @property
    def step(self) -> int:
        return self.step_ref[0]

    @step.setter
    def step(self, value: int) -> None:
        self.step_ref[0] = value

    def restore(self, saved: dict) -> None:
        """Load the checkpoint and state.json of an interrupted run."""
        tensors = load_tensors(self.out / "checkpoint.safetensors")
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.ema.module.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        _opt_from_tensors(self.opt, tensors, saved["optimizer_param_groups"])
        self.gen.set_state(tensors["rng.torch_gen"])
        if self.noise_gen is not self.gen and "rng.noise_gen" in tensors:
            self.noise_gen.set_state(tensors["rng.noise_gen"])
        torch.set_rng_state(tensors["rng.torch_cpu"])
        self.sampler.set_state(saved["sampler_rng"])
        self.step, self.history = saved["step"], saved["history"]
        self.ema.n_averaged.fill_(self.step + 1)
        self.clock.start = time.time() - saved["elapsed_s"]
        self.sched.last_epoch = self.step
        self.median = saved.get("amplitude_median")
        log.info("resumed %s at step %d", self.out, self.step)

    def save(self) -> None:
        """Checkpoint (model, EMA, optimiser, generators), state.json and the exported EMA model."""
        opt_t, groups = _opt_to_tensors(self.opt)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors |= {f"ema.{k}": v for k, v in self.ema.module.state_dict().items()}
        tensors |= opt_t
        tensors["rng.torch_gen"] = self.gen.get_state()
        if self.noise_gen is not self.gen:
            tensors["rng.noise_gen"] = self.noise_gen.get_state()
        tensors["rng.torch_cpu"] = torch.get_rng_state()
        save_tensors(self.out / "checkpoint.safetensors", tensors)
        state = {
            "step": self.step,
            "elapsed_s": self.clock(),
            "config": asdict(self.cfg),
            "optimizer_param_groups": groups,
            "sampler_rng": self.sampler.state(),
            "amplitude_median": self.median,
            "history": self.history,
        }
        save_json(self.out / "state.json", state)
        export(self)

    def train_step(self) -> float:
        """One optimiser step on a fresh batch (bf16 autocast on CUDA); returns the loss."""
        cfg, device = self.cfg, self.device
        x0 = self.sampler.batch(cfg.batch).to(device, non_blocking=True)
        t = sample_timesteps(cfg.batch, cfg, self.gen).to(device)
        eps = torch.randn(x0.shape, generator=self.noise_gen, device=device)
        x_t, target = noised_batch(cfg, self.abar, x0, t, eps)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            pred = self.model(x_t, t)
        loss = (pred.float() - target).pow(2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.step += 1
        self.ema.update_parameters(self.model)
        self.sched.step()
        return loss.item()

    def record(self, lr: float, train_loss: float, writer) -> dict:
        """Validate the EMA and raw weights, append to the history and the CSV log."""
        rec = {
            "step": self.step,
            "elapsed_s": round(self.clock(), 1),
            "lr": lr,
            "train_loss": train_loss,
            "val_loss_ema": self.val.loss(self.ema.module, self.device),
            "val_loss_raw": self.val.loss(self.model, self.device),
        }
        self.history.append(rec)
        writer.writerow(list(rec.values()))
        return rec


def _loss_log(out: Path):
    """The CSV loss log (appended to on resume) and its writer."""
    path = out / "loss_log.csv"
    new = not path.exists()
    f = open(path, "a", newline="")  # noqa: SIM115 - kept open for the whole run
    writer = csv.writer(f)
    if new:
        writer.writerow(["step", "elapsed_s", "lr", "train_loss", "val_loss_ema", "val_loss_raw"])
    return f, writer


def _loop(run: _Run, end: int, stop: dict, writer, logf, bar) -> None:
    """Train until ``end`` steps, the time budget or SIGTERM; validate and checkpoint on schedule."""
    cfg = run.cfg
    run_loss, n_loss = 0.0, 0
    while run.step < end and not stop["flag"]:
        if cfg.max_minutes and run.clock() >= 60 * cfg.max_minutes:
            log.info("time budget of %.1f min reached at step %d", cfg.max_minutes, run.step)
            break
        lr = run.opt.param_groups[0]["lr"]
        run_loss += run.train_step()
        n_loss += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{run_loss / n_loss:.4f}", lr=f"{lr:.1e}")
        if run.step % cfg.val_every == 0 or run.step >= end:
            rec = run.record(lr, run_loss / n_loss, writer)
            logf.flush()
            log.info("step %d train %.4f val(ema) %.4f val(raw) %.4f", run.step, rec["train_loss"],
                     rec["val_loss_ema"], rec["val_loss_raw"])  # fmt: skip
            run_loss, n_loss = 0.0, 0
        if run.step % cfg.save_every == 0:
            run.save()
    if not run.history or run.history[-1]["step"] != run.step:
        run.record(run.opt.param_groups[0]["lr"], run_loss / max(n_loss, 1), writer)


def train(
    cfg: TrainConfig, resume: bool = False, progress: bool = True, stop_after: int | None = None
) -> dict[str, Any]:
    """Train (or resume) a prior; returns a summary dict (step, elapsed_s, history, out, model, parameters).

    ``stop_after`` ends this call after that many steps (checkpointed) without changing the
    schedule, which stays defined by ``cfg.steps``: resuming later gives the uninterrupted run.
    SIGTERM (in the main thread) finishes the step, saves and returns. Raises FileExistsError when
    ``cfg.out`` already holds a run (pass resume), FileNotFoundError when there is nothing to resume or
    a source is missing, ValueError for unusable data or an unavailable device.
    """
    cfg, saved = _open_run(cfg, resume)
    start = _init_weights(cfg) if saved is None else None  # a resumed run has its own weights
    device = _setup_torch(cfg)
    run = _Run(cfg, device, _load_data(cfg))
    if start is not None:
        load_state_into(run.model, start, f"--init {cfg.init}")
        run.ema.module.load_state_dict(run.model.state_dict())
    if saved is not None:
        run.restore(saved)
    if run.median is None:
        run.median = run.sampler.median_amplitude()
    stop = {"flag": False}
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True)) if main else None
    logf, writer = _loss_log(run.out)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=cfg.steps, initial=run.step, desc=f"train {cfg.name}", unit="step", dynamic_ncols=True
        )
    end = cfg.steps if stop_after is None else min(cfg.steps, run.step + stop_after)
    try:
        _loop(run, end, stop, writer, logf, bar)
        run.save()
    finally:
        logf.close()
        if bar is not None:
            bar.close()
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    model = run.out / f"{cfg.name}.safetensors"
    return {"step": run.step, "elapsed_s": run.clock(), "history": run.history, "out": str(run.out),
            "model": str(model), "parameters": count_parameters(run.model)}  # fmt: skip


def training_record(run: _Run) -> dict[str, Any]:
    """The "training" section of an exported model's config: budget, losses, and the sources and files
    relative to the data root (:func:`data_root`), never absolute machine paths."""
    cfg, last, root = run.cfg, (run.history[-1] if run.history else {}), data_root(run.cfg)
    return {
        "steps": run.step,
        "elapsed_s": round(run.clock(), 1),
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
        "sources": [_relative(s, root) for s in cfg.sources],
        "exclude": list(cfg.exclude),
        "init": Path(cfg.init).stem if cfg.init else None,  # the prior it was fine-tuned from
        "validation": [os.path.basename(str(f)) for f in run.val_files],
        "n_files": len(run.files),
        "files": [_relative(f, root) for f in run.files],
    }


def export(run: _Run) -> Path:
    """Write <out>/<name>.safetensors (the run's EMA weights) and <name>.json (its config)."""
    extra = {
        "amplitude_median": run.median,
        "parameters": count_parameters(run.ema.module),
        "training": training_record(run),
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path = _write_weights(run.out, run.cfg, run.ema.module.state_dict())
    save_json(run.out / f"{run.cfg.name}.json", model_config(run.cfg, extra))
    return path


def _write_weights(out: Path, cfg: TrainConfig, state: dict[str, torch.Tensor]) -> Path:
    """<out>/<name>.safetensors in the run's export dtype, tagged as a geodiff prior."""
    path = out / f"{cfg.name}.safetensors"
    save_tensors(
        path, _cast(state, cfg.weights_dtype), metadata={"format": "geodiff-prior", "name": cfg.name}
    )
    return path


def _cast(state: dict[str, torch.Tensor], dtype: str) -> dict[str, torch.Tensor]:
    """Floating tensors to the export dtype (float32 or float16); the loader casts back to float32."""
    if dtype not in ("float32", "float16"):
        raise InvalidSettingError(f"weights dtype {dtype!r} is not supported; use float32 or float16")
    dt = getattr(torch, dtype)
    return {k: v.to(dt) if v.is_floating_point() else v for k, v in state.items()}


def data_root(cfg: TrainConfig) -> Path:
    """The folder sources are recorded relative to: ``cfg.data_root``, else the sources' common parent."""
    if cfg.data_root:
        return Path(cfg.data_root).resolve()
    parents = [str(Path(s).resolve().parent) for s in [*cfg.sources, *cfg.val_sources]]
    return Path(os.path.commonpath(parents)) if parents else Path.cwd()


def _relative(path: str | os.PathLike, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX separators); just the name when it lies outside the root."""
    p = Path(path).resolve()
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.name


__all__ = [
    "TrainConfig",
    "data_root",
    "export",
    "export_best",
    "lr_factor",
    "noised_batch",
    "sample_timesteps",
    "train",
]


def export_best(run_dir: str | os.PathLike, weights: str = "best") -> dict[str, Any]:
    """Re-export a run's model from its EMA or raw weights (``weights``: "ema", "raw" or "best").

    "best" takes whichever has the lower final validation loss. Why: with a short run (a CPU budget) a
    0.999 EMA still remembers early, worse weights; once the learning rate has annealed the raw weights
    can be better. The choice is recorded in the config. Returns {"weights": "ema" | "raw", "step": ...,
    and the last history record}. Raises FileNotFoundError when ``run_dir`` holds no run (state.json),
    ValueError for an unknown ``weights`` or a run without validation history.
    """
    if weights not in ("best", "ema", "raw"):
        raise InvalidSettingError(f"weights must be 'best', 'ema' or 'raw' (got {weights!r})")
    out = Path(run_dir)
    if not (out / "state.json").exists():
        raise FileNotFoundError(
            f"{out}: no training run here (state.json missing); give the --out of `geodiff train`"
        )
    saved = load_json(out / "state.json")
    cfg = TrainConfig(**saved["config"])
    if not saved["history"]:
        raise InvalidSettingError(f"{out}: the run has no validation record yet; train it further first")
    last = saved["history"][-1]
    which = (
        weights if weights != "best" else ("raw" if last["val_loss_raw"] < last["val_loss_ema"] else "ema")
    )
    tensors = load_tensors(out / "checkpoint.safetensors")
    prefix = "model." if which == "raw" else "ema."
    net = UNet(cfg.unet())
    net.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    name = out / f"{cfg.name}.json"
    config = load_json(name)
    _write_weights(out, cfg, net.state_dict())
    config["training"]["exported_weights"] = which
    config["training"]["final_val_loss_ema"] = last["val_loss_ema"]
    config["training"]["final_val_loss_raw"] = last["val_loss_raw"]
    save_json(name, config)
    return {"weights": which, "step": saved["step"], **last}
