"""End to end on the GPU: whole synthetic scenes through `geodiff despeckle` (SAR-DPS, the device's default
profile) against the 1.4 Mpx/s goal, with Lee on the machine's CPUs and reference DPS in the same run.

    python bench/gpu_e2e.py [--sizes 16384x16384 25000x17000] [--calib 2048x2048] [--budget 300]
                            [--device auto] [--lee-workers 0] [--workdir DIR] [--out results/gpu_e2e.json]
    python bench/gpu_e2e.py --sizes 512x512 --calib 256x256 --device cpu --despeckle-args "--prior tiny"

Scenes are made here (gamma speckle of L = 4 looks over a textured reflectivity of parcels and ridges,
tiled uncompressed float32 GeoTIFFs, written strip by strip, on the GPU when there is one). Each
`geodiff despeckle IN OUT --json --units intensity` runs as its own process through the real CLI with
``GEODIFF_PROGRESS=json``; a thin wrapper in that process (``--child``) times the stages of the job
without changing it: read (source windows), sample (the method on the block's tiles, GPU work
included), blend (overlap-add), write (scratch GeoTIFF), QA (PROTOCOL §2 pass) and COG (conversion,
overviews, verification); ``setup`` is the time before the first block (imports, units and looks,
prior load, CUDA start). Stage sums are per process, summed over its threads (on CUDA two blocks run at
once, so the stages can add up to more than the wall time). The
wrapper also reports the process's peak RSS and torch's peak allocated GPU memory; a sampler thread
here reads ``nvidia-smi`` (memory used, utilisation) every 0.5 s.

Budget: a small calibration scene runs first (every stage, complete); each large scene then runs only
as long as the remaining budget allows. A run stopped at its cap (SIGTERM: the CLI removes its
temporary files) is reported with the fraction of blocks done and its rate over that fraction, and
its full time extrapolated from that rate plus the calibration's per-Mpx finishing cost
(``extrapolated: true``); each large scene gets an equal share of the budget left, and one that
would not finish 1 % of its blocks in it (at the calibration scene's rate) is skipped, the reason
recorded. Lee (7x7) runs through the same CLI on
the CPUs (``--lee-workers N``: a local dask cluster of N processes; 0: in-process), capped the same
way. Reference DPS (Chung et al. 2023: 1000 steps from noise with back-propagation through the
network) is timed on one 256² tile over ``--ref-steps`` steps by ``bench/solver_speed.py`` and
extrapolated to the scene. Results: ``--out`` (no machine paths) and a table on stdout.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import json
import math
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
GOAL_MPX_S = 1.4  # issue 17: a 25,000 x 17,000 IW GRDH scene (425 Mpx) in about 5 minutes
LOOKS = 4.0
STAGES = ("setup", "read", "sample", "blend", "write", "qa", "cog")


# ---- scenes ---------------------------------------------------------------------------------------
def parse_size(text: str) -> tuple[int, int]:
    """'25000x17000' -> (width, height); '512' -> (512, 512)."""
    w, _, h = text.lower().partition("x")
    return int(w), int(h or w)


def _reflectivity(rows, cols, torch):  # noqa: ANN001, ANN202 - (h, w) float32 amplitude in [0.08, 1]
    """Deterministic texture from pixel coordinates alone (strips join seamlessly): hashed parcels of
    two sizes (sharp edges, like fields) modulated by ridges at several orientations."""

    def hashed(ix, iy):  # noqa: ANN001, ANN202 - a value in [0, 1) per cell
        v = torch.sin(ix * 12.9898 + iy * 78.233) * 43758.5453
        return v - torch.floor(v)

    y, x = rows[:, None], cols[None, :]
    big = hashed(torch.floor(x / 411.0), torch.floor(y / 389.0))
    small = hashed(torch.floor((x + 0.7 * y) / 97.0), torch.floor((y - 0.3 * x) / 83.0))
    ridge = 0.5 + 0.5 * torch.sin(x / 23.0 + 2.0 * torch.sin(y / 151.0)) * torch.cos(y / 37.0)
    return (0.08 + 0.92 * (0.55 * big + 0.3 * small + 0.15 * ridge)).clamp(0.08, 1.0)


def make_scene(
    path: Path, width: int, height: int, device: str = "cpu", seed: int = 0, strip: int = 512
) -> float:
    """Write a (height, width) single-band intensity GeoTIFF (float32, tiled 512², uncompressed, UTM 32N,
    10 m): I = a² · Gamma(L, 1/L) with L = 4 over :func:`_reflectivity`. Strips of ``strip`` rows are
    drawn on ``device`` (torch, seeded per strip) and written one at a time (memory ~ one strip).
    The file appears under ``path`` only when complete. Returns the seconds it took."""
    import numpy as np
    import rasterio
    import torch
    from rasterio.windows import Window

    t0 = time.perf_counter()
    dev = torch.device(device)
    prof = {
        "driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32",
        "tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "IF_SAFER",
        "crs": "EPSG:32632", "transform": rasterio.Affine(10, 0, 500000, 0, -10, 5200000),
    }  # fmt: skip
    cols = torch.arange(width, device=dev, dtype=torch.float32)
    conc = torch.full((strip, width), LOOKS, device=dev)
    part = path.with_name(f".{path.name}.part.tif")
    with rasterio.open(part, "w", **prof) as dst:
        dst.set_band_description(1, "intensity (linear power)")
        for r0 in range(0, height, strip):
            h = min(strip, height - r0)
            rows = torch.arange(r0, r0 + h, device=dev, dtype=torch.float32)
            torch.manual_seed(seed * 1_000_003 + r0)
            speckle = torch._standard_gamma(conc[:h]) / LOOKS
            inten = _reflectivity(rows, cols, torch).square() * speckle
            dst.write(inten.cpu().numpy().astype(np.float32)[None], window=Window(0, r0, width, h))
    os.replace(part, path)
    return time.perf_counter() - t0


# ---- the child: the real CLI with stage timers ------------------------------------------------------
class StageTimer:
    """Wall seconds per stage of one despeckle job, written as JSON to ``path`` every second and at exit."""

    def __init__(self, path: str) -> None:
        self.path, self.t0, self.epoch0 = path, time.perf_counter(), time.time()
        self.sums = dict.fromkeys(("block", "read", "blend", "write", "finish", "qa"), 0.0)
        self.counts = dict.fromkeys(self.sums, 0)
        self.first_block: float | None = None
        self.last_block: float | None = None
        self.lock, self.local = threading.Lock(), threading.local()

    def add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.sums[name] += seconds
            self.counts[name] += 1

    def wrap(self, owner: object, attr: str, name: str, block: bool = False) -> None:
        """Replace ``owner.attr`` by a timed version (skipped, and said so, where it does not exist)."""
        fn = getattr(owner, attr, None)
        if fn is None:
            self.sums.setdefault(f"missing:{attr}", 0.0)
            return

        @functools.wraps(fn)
        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            t = time.perf_counter()
            if block and self.first_block is None:
                self.first_block = t - self.t0
            try:
                return fn(*args, **kwargs)
            finally:
                now = time.perf_counter()
                self.add(name, now - t)
                if block:
                    self.last_block = now - self.t0

        setattr(owner, attr, timed)

    def install(self) -> None:
        """Time the stages through the functions the job calls (tiling and the despeckle app)."""
        import tiling.blend
        import tiling.cog
        import tiling.runner
        import tiling.sources
        from geodiff.apps.despeckle import scene

        self.wrap(tiling.runner, "compute_block_tiles", "block", block=True)
        self.wrap(tiling.runner, "compute_block_array", "block", block=True)
        self.wrap(tiling.sources.RasterSource, "read", "read")
        self.wrap(tiling.blend, "blend_tiles", "blend")
        self.wrap(tiling.cog.CogWriter, "write", "write")
        self.wrap(tiling.cog.CogWriter, "_finish", "finish")
        tags_hook = getattr(scene, "_tags_hook", None)
        if tags_hook is not None:

            @functools.wraps(tags_hook)
            def hook_factory(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
                hook = tags_hook(*args, **kwargs)

                def timed_hook(tmp_path: str) -> None:
                    t = time.perf_counter()
                    try:
                        hook(tmp_path)
                    finally:
                        self.add("qa", time.perf_counter() - t)

                return timed_hook

            scene._tags_hook = hook_factory
        threading.Thread(target=self._loop, daemon=True).start()
        atexit.register(self.dump)

    def stages(self) -> dict:
        """Seconds per stage (see the module docstring) from the sums so far."""
        s = self.sums
        out = {
            "setup": self.first_block,
            "read": s["read"],
            "sample": max(0.0, s["block"] - s["read"] - s["blend"]),
            "blend": s["blend"],
            "write": s["write"],
            "qa": s["qa"],
            "cog": max(0.0, s["finish"] - s["qa"]),
            "blocks_wall": None if self.first_block is None else self.last_block - self.first_block,
            "blocks": self.counts["block"],
        }
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}

    def dump(self) -> None:
        import resource

        info = {"elapsed": round(time.perf_counter() - self.t0, 3), "stages": self.stages()}
        info["epoch0"] = self.epoch0
        info["missing"] = [k.split(":", 1)[1] for k in self.sums if k.startswith("missing:")]
        info["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            info["torch_peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, self.path)

    def _loop(self) -> None:
        while True:
            time.sleep(1.0)
            with contextlib.suppress(Exception):
                self.dump()


def child_main(argv: list[str]) -> None:
    """``--child STATS.json ARGS...``: run ``geodiff ARGS`` in this process with the stage timers on."""
    timer = StageTimer(argv[0])
    timer.install()
    from geodiff.cli import cli

    try:
        cli.main(args=argv[1:], prog_name="geodiff")
    finally:
        timer.dump()


# ---- the parent: one CLI run, sampled ---------------------------------------------------------------
class Sampler:
    """Peak GPU memory and utilisation (nvidia-smi) and the child's RSS (psutil) every ``every`` s."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every = pid, every
        self.smi = shutil.which("nvidia-smi")
        self.gpu_mem: list[float] = []
        self.gpu_util: list[tuple[float, float]] = []  # (time, %)
        self.rss = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            import psutil

            proc = psutil.Process(self.pid)
        except Exception:  # noqa: BLE001 - no psutil or the child already ended: the child reports its own
            proc = None
        while not self.stop.is_set():
            if self.smi:
                q = [self.smi, "--query-gpu=memory.used,utilization.gpu", "--format=csv,noheader,nounits"]
                with contextlib.suppress(Exception):
                    first = subprocess.run(q, capture_output=True, text=True, timeout=5).stdout.splitlines()[
                        0
                    ]
                    mem, util = (float(v) for v in first.split(","))
                    self.gpu_mem.append(mem)
                    self.gpu_util.append((time.perf_counter(), util))
            if proc is not None:
                with contextlib.suppress(Exception):
                    rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(True))
                    self.rss = max(self.rss, rss / 2**20)
            self.stop.wait(self.every)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def cli_help_has(option: str) -> bool:
    """Whether `geodiff despeckle --help` lists ``option`` (e.g. --profile, added by another issue)."""
    res = subprocess.run([sys.executable, "-m", "geodiff.cli", "despeckle", "--help"], capture_output=True,
                         text=True, env=_env(), timeout=120)  # fmt: skip
    return option in res.stdout


def _env() -> dict:
    env = dict(os.environ, GEODIFF_PROGRESS="json", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def run_cli(src: Path, out: Path, args: list[str], cap: float, work: Path) -> dict:
    """One `geodiff despeckle SRC OUT --json ARGS` in its own process, stopped (SIGTERM) after ``cap`` s.

    Returns wall seconds, exit code, the CLI's JSON summary (None when stopped), the progress events
    [(seconds, fraction)], the child's stage timings and the sampled GPU memory/utilisation and RSS.
    """
    stats = work / f"stages_{out.stem}.json"
    stats.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(stats), "despeckle", str(src),
           str(out), "--overwrite", "--json", "--units", "intensity", *args]  # fmt: skip
    t0, epoch0 = time.perf_counter(), time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    sampler = Sampler(proc.pid)
    events: list[tuple[float, float]] = []
    tail: list[str] = []

    def read_stderr() -> None:
        for line in proc.stderr:
            try:
                events.append((time.perf_counter() - t0, float(json.loads(line)["progress"])))
            except (ValueError, KeyError, TypeError):
                tail.append(line.rstrip())
                del tail[:-30]

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    stdout, stopped = "", False
    try:
        stdout, _ = proc.communicate(timeout=max(1.0, cap))
    except subprocess.TimeoutExpired:
        stopped = True
        proc.send_signal(signal.SIGTERM)  # the CLI unwinds and removes its temporary files
        try:
            stdout, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.close()
    reader.join(timeout=5)
    summary = None
    if proc.returncode == 0:
        with contextlib.suppress(ValueError):
            summary = json.loads(stdout)
    child = json.loads(stats.read_text()) if stats.exists() else {}
    for left_over in out.parent.glob(f".{out.name}*"):  # a stopped run's kept blocks: never resumed
        shutil.rmtree(left_over, ignore_errors=True) if left_over.is_dir() else left_over.unlink()
    if child.get("epoch0") is not None and child.get("stages", {}).get("setup") is not None:
        child["first_block_at"] = child["epoch0"] - epoch0 + child["stages"]["setup"]  # parent clock
    return dict(wall=wall, returncode=proc.returncode, stopped=stopped, summary=summary, events=events,
                tail=tail, child=child, sampler=sampler, t0=t0)  # fmt: skip


def _util_during(sampler: Sampler, t0: float, events: list[tuple[float, float]]) -> float | None:
    """Mean GPU utilisation (%) while blocks ran (between the first and the last progress event)."""
    if not sampler.gpu_util:
        return None
    lo, hi = (events[0][0], events[-1][0]) if len(events) > 1 else (0.0, math.inf)
    vals = [u for t, u in sampler.gpu_util if lo <= t - t0 <= hi] or [u for _, u in sampler.gpu_util]
    return round(sum(vals) / len(vals), 1)


def _profile_nfe(summary: dict | None, args: list[str]) -> tuple[str, int | None]:
    """The sampler profile and NFE of a run, from its JSON summary (else from the arguments given)."""
    s = summary or {}
    settings = s.get("settings") or {}
    profile = s.get("profile") or settings.get("profile")
    if profile is None and "--profile" in args:
        profile = args[args.index("--profile") + 1]
    nfe = s.get("nfe") or settings.get("nfe")
    if nfe is None and settings.get("steps") is not None:  # network evaluations per tile
        refine = settings.get("refine", True)
        nfe = int(settings["steps"]) * int(settings.get("samples") or 1) if refine else 0
        # plus the PnP-ADMM start's denoiser calls, where the profile has one
        nfe += int(settings.get("admm_iters") or 0) * int(settings.get("admm_ensemble") or 1)
    return (profile or "cli default"), nfe


def scene_row(label: str, method: str, width: int, height: int, res: dict, args: list[str], device: str,
              finish_per_mpx: float | None = None, like: dict | None = None) -> dict:  # fmt: skip
    """The JSON row of one CLI run (see the module docstring); a stopped run is extrapolated."""
    mpx = width * height / 1e6
    summary, events, sampler = res["summary"], res["events"], res["sampler"]
    profile, nfe = _profile_nfe(summary, args) if method == "sar-dps" else ("-", 0)
    if summary is None and like is not None:  # a stopped run prints no summary: same options as ``like``
        profile, nfe = like.get("profile", profile), like.get("nfe", nfe)
    row = dict(scene=label, method=method, width=width, height=height, mpx=round(mpx, 3),
               seconds=round(res["wall"], 2), mpx_s=round(mpx / res["wall"], 4), profile=profile, nfe=nfe,
               device=device, completed=res["returncode"] == 0, extrapolated=False)  # fmt: skip
    if sampler.gpu_mem:
        row["peak_gpu_mib"] = max(sampler.gpu_mem)
    else:
        row["peak_gpu_mib"] = None
    row["torch_peak_gpu_mib"] = res["child"].get("torch_peak_gpu_mib")
    row["gpu_util_pct"] = _util_during(sampler, res["t0"], events)
    row["peak_rss_mib"] = res["child"].get("peak_rss_mib") or (round(sampler.rss, 1) or None)
    row["stages"] = res["child"].get("stages", {})
    fraction = events[-1][1] if events else 0.0
    row["fraction_done"] = round(fraction, 4)
    if not row["completed"]:
        row["returncode"] = res["returncode"]
        row["error"] = None if res["stopped"] else " | ".join(res["tail"][-3:])[-600:]
        start = res["child"].get("first_block_at")
        whole = start is None  # blocks on dask workers: no block clock here, the rate includes setup
        start = 0.0 if whole else start
        if res["stopped"] and events and fraction > 0 and events[-1][0] > start:
            rate = fraction * mpx / (events[-1][0] - start)  # Mpx/s while blocks ran
            setup = row["stages"].get("setup") or start
            finish = (finish_per_mpx or 0.0) * mpx
            total = setup + mpx / rate + finish
            row.update(extrapolated=True, seconds=round(total, 1), mpx_s=round(mpx / total, 4),
                       blocks_mpx_s=round(rate, 4), measured_seconds=round(res["wall"], 1),
                       note=f"stopped at its time cap after {res['wall']:.0f} s with "
                       f"{100 * fraction:.1f} % of the blocks done; seconds = setup + the rest at the "
                       "measured block rate + the calibration scene's finishing cost per Mpx"
                       + (" (rate over the whole run, setup included)" if whole else ""))  # fmt: skip
        else:
            row.update(seconds=None, mpx_s=None)
    return row


def predict_seconds(row: dict, mpx: float) -> float | None:
    """Seconds a scene of ``mpx`` would take with the options of ``row`` (a completed run): its setup,
    plus ``mpx`` at its block rate (Mpx per second of the blocks' wall time), plus its finishing cost."""
    st = row.get("stages") or {}
    if not row.get("completed") or not st.get("blocks_wall"):
        return None
    blocks = mpx * st["blocks_wall"] / row["mpx"]
    return (st.get("setup") or 0.0) + blocks + (finishing_cost(row) or 0.0) * mpx


def finishing_cost(row: dict) -> float | None:
    """Seconds per Mpx after the last block (QA + COG) of a completed run."""
    st = row.get("stages") or {}
    if not row.get("completed") or st.get("cog") is None:
        return None
    return ((st.get("qa") or 0.0) + st.get("cog")) / row["mpx"]


# ---- reference DPS ----------------------------------------------------------------------------------
def reference_dps_row(width: int, height: int, prior: str, device: str, ref_steps: int, tile: int) -> dict:
    """Reference DPS on one ``tile``² tile of the synthetic texture (bench/solver_speed.py's timing),
    extrapolated to 1000 steps and to the scene."""
    import solver_speed
    import torch

    from geodiff.priors import load

    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    idx = torch.arange(tile, dtype=torch.float32)
    torch.manual_seed(0)
    a = _reflectivity(idx, idx, torch)
    y = (a.square() * torch._standard_gamma(torch.full_like(a, LOOKS)) / LOOKS)[None, None].to(dev)
    per_tile = solver_speed.reference_dps_seconds(y, load(prior).to(dev), LOOKS, ref_steps, dev)
    seconds = per_tile * width * height / tile**2
    mpx = width * height / 1e6
    return dict(scene=f"{width}x{height}", method="reference DPS (1000 NFE + backprop)", width=width,
                height=height, mpx=round(mpx, 3), seconds=round(seconds, 1), mpx_s=round(mpx / seconds, 6),
                profile="-", nfe=1000, device=device_name(device), peak_gpu_mib=None, completed=False,
                extrapolated=True, s_per_tile=round(per_tile, 3),
                note=f"{ref_steps} steps timed on one {tile}² tile (prior {prior}), x 1000/{ref_steps}, "
                "x the scene's tiles (no overlap)")  # fmt: skip


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({os.cpu_count()} cores)"


# ---- the job ----------------------------------------------------------------------------------------
def fmt(v, spec: str = ".2f") -> str:  # noqa: ANN001
    return "-" if v is None else format(v, spec)


def print_table(rows: list[dict], goal: float) -> None:
    print(f"Goal: >= {goal} Mpx/s end to end (a 25,000 x 17,000 scene, 425 Mpx, in about 5 minutes)")
    head = ["scene", "method", "profile", "NFE", "s", "Mpx/s", "x goal", "device", "peak GPU MiB",
            "GPU util %", "peak RSS MiB", *STAGES, "note"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        st = r.get("stages") or {}
        ratio = None if r.get("mpx_s") is None else r["mpx_s"] / goal
        note = "extrapolated" if r.get("extrapolated") else ("" if r.get("completed") else "failed")
        cells = [r["scene"], r["method"], r.get("profile", "-"), r.get("nfe"), fmt(r.get("seconds"), ".1f"),
                 fmt(r.get("mpx_s"), ".4f"), fmt(ratio, ".3f"), r.get("device"),
                 fmt(r.get("peak_gpu_mib"), ".0f"), fmt(r.get("gpu_util_pct"), ".0f"),
                 fmt(r.get("peak_rss_mib"), ".0f"), *[fmt(st.get(k), ".1f") for k in STAGES],
                 note]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes", nargs="+", default=["16384x16384", "25000x17000"], help="WIDTHxHEIGHT, in order"
    )
    ap.add_argument("--calib", default="2048x2048", help="calibration scene (complete run, every stage)")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds for the whole benchmark")
    ap.add_argument("--device", default="auto", help="auto, cuda, cpu (passed to the CLI unless auto)")
    ap.add_argument(
        "--despeckle-args",
        default="--likelihood-looks 1.2",
        help="extra `geodiff despeckle` options for SAR-DPS (default: the likelihood looks of a Sentinel-1 "
        "GRD scene, whose correlated speckle gives about 1.1-1.2 and the PnP path; the synthetic scenes' "
        "white L = 4 speckle would take the homomorphic one-step path)",
    )
    ap.add_argument("--lee-workers", type=int, default=0, help="Lee: dask worker processes (0: in-process)")
    ap.add_argument("--lee-share", type=float, default=0.15, help="share of the budget for the Lee run")
    ap.add_argument("--ref-prior", default="gray")
    ap.add_argument("--ref-steps", type=int, default=10)
    ap.add_argument("--ref-tile", type=int, default=256)
    ap.add_argument("--workdir", type=Path, default=None, help="scenes and outputs (default: a temp folder)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gpu_e2e.json")
    args = ap.parse_args(argv)

    import torch

    t_start = time.perf_counter()
    deadline = t_start + args.budget
    left = lambda: deadline - time.perf_counter()  # noqa: E731
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    work = args.workdir or Path(tempfile.mkdtemp(prefix="geodiff_gpu_e2e_"))
    work.mkdir(parents=True, exist_ok=True)
    extra = shlex.split(args.despeckle_args)
    if args.device != "auto":
        extra += ["--device", args.device]
    dname = device_name(device)
    meta = dict(python=platform.python_version(), torch=torch.__version__, device=dname, cpus=os.cpu_count(),
                goal_mpx_s=GOAL_MPX_S, budget_s=args.budget, despeckle_args=extra, looks=LOOKS,
                cli_has_profile=cli_help_has("--profile"), date=time.strftime("%Y-%m-%d"),
                gpu_precision=os.environ.get("GEODIFF_GPU_PRECISION") or "default",
                gpu_chunk=os.environ.get("GEODIFF_GPU_CHUNK") or "default")  # fmt: skip
    rows: list[dict] = []
    notes: list[str] = []

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(meta=meta, scenes=rows, notes=notes), indent=1) + "\n")
        tmp.replace(args.out)

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f} s] {msg}", file=sys.stderr, flush=True)

    def sar_dps(
        label: str, w: int, h: int, cap: float, reserve: float = 0.0, like: dict | None = None
    ) -> dict:  # noqa: E501
        src = work / f"scene_{label}.tif"
        if not src.exists():
            log(f"making {label} ({w}x{h})")
            notes.append(f"{label}: scene made in {make_scene(src, w, h, device):.1f} s")
        cap = min(cap, left() - reserve)
        log(f"sar-dps {label}, cap {cap:.0f} s")
        res = run_cli(src, work / f"out_{label}.tif", extra, cap, work)
        finish = finishing_cost(like) if like else None
        row = scene_row(label, "sar-dps", w, h, res, extra, dname, finish, like)
        rows.append(row)
        save()
        (work / f"out_{label}.tif").unlink(missing_ok=True)
        log(f"sar-dps {label}: {row['mpx_s']} Mpx/s ({'complete' if row['completed'] else 'stopped'})")
        return row

    # 1. calibration: every stage, complete (without --calib the first scene is the calibration)
    calib: dict | None = None
    if args.calib:
        cw, ch = parse_size(args.calib)
        calib = sar_dps(f"{cw}x{ch}", cw, ch, max(30.0, 0.5 * left()))
    # 2. the large scenes, each within what is left (keeping the Lee and reference-DPS shares)
    # (each gets an equal share of what is left: a scene that cannot finish is stopped at its cap and
    # extrapolated, so every size has a measured rate)
    reserve = args.lee_share * args.budget + 15.0
    last_large: dict | None = None
    for i, text in enumerate(args.sizes):
        w, h = parse_size(text)
        label = f"{w}x{h}"
        room = max((left() - reserve) / (len(args.sizes) - i), min(20.0, left() - reserve))
        need = predict_seconds(calib, w * h / 1e6) if calib else None
        why = f"{room:.0f} s left" if room < 10 else None
        free = shutil.disk_usage(work).free
        if why is None and 2.5 * 4 * w * h > free:  # float32 scene + scratch output + COG
            why = f"its files need ~{2.5 * 4 * w * h / 2**30:.0f} GiB, {free / 2**30:.0f} GiB free"
        if why is None and need is not None and need > 100 * room:  # under 1 % of its blocks: no rate
            why = f"at the rate of {calib['scene']} it needs ~{need:.0f} s, over 100x the {room:.0f} s it has"
        if why:
            notes.append(f"{label}: skipped: {why}")
            log(notes[-1])
            continue
        last_large = sar_dps(label, w, h, room, reserve, calib)
        calib = calib or last_large
    # 3. Lee on the CPUs, through the same CLI, on the largest scene run
    big = last_large or calib
    if big is None:
        raise SystemExit("no scene ran: give --sizes and a --budget that leaves room for them")
    lee_args = ["--method", "lee"] + (["--workers", str(args.lee_workers)] if args.lee_workers else [])
    src = work / f"scene_{big['scene']}.tif"
    t_lee = time.perf_counter()
    cap = max(10.0, min(args.lee_share * args.budget, left() - 10.0))
    log(f"lee {big['scene']} ({args.lee_workers or 'in-process'}), cap {cap:.0f} s")
    res = run_cli(src, work / "out_lee.tif", lee_args, cap, work)
    how = f"{args.lee_workers} dask worker processes" if args.lee_workers else "in-process"
    if res["returncode"] != 0 and not res["stopped"] and args.lee_workers:  # no cluster here: in-process
        notes.append(f"lee with --workers {args.lee_workers} failed ({' | '.join(res['tail'][-2:])[-300:]}); "
                     "ran in-process instead")  # fmt: skip
        log(notes[-1])
        lee_args, how = ["--method", "lee"], "in-process"
        cap = max(10.0, cap - (time.perf_counter() - t_lee))
        res = run_cli(src, work / "out_lee.tif", lee_args, cap, work)
    lee = scene_row(big["scene"], "lee 7x7 (CPU)", big["width"], big["height"], res, lee_args,
                    f"cpu ({os.cpu_count()} cores, {how})", finishing_cost(calib))  # fmt: skip
    rows.append(lee)
    (work / "out_lee.tif").unlink(missing_ok=True)
    save()
    # 4. reference DPS, extrapolated from one tile
    log("reference DPS")
    try:
        rows.append(reference_dps_row(big["width"], big["height"], args.ref_prior, device, args.ref_steps,
                                      args.ref_tile))  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a benchmark row, not the job: record and go on
        notes.append(f"reference DPS failed: {type(exc).__name__}: {exc}")
    meta["wall_s"] = round(time.perf_counter() - t_start, 1)
    save()
    print_table(rows, GOAL_MPX_S)
    for n in notes:
        print(f"* {n}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        sys.exit(main())
