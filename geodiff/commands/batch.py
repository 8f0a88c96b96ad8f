"""`geodiff batch INPUT... --out DIR`: despeckle (or fuse) many scenes, on a dask cluster, resumable."""

from __future__ import annotations

import json
import time

import click

from geodiff.apps.batch import DEFAULT_NAME, JOBS
from geodiff.apps.despeckle.sar_dps import ESTIMATORS
from geodiff.cli import units_option


@click.command("batch")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--job", type=click.Choice(JOBS), default="despeckle", show_default=True, help="What to run.")
@click.option(
    "--scheduler",
    default=None,
    help="Address of a running dask scheduler (tcp://host:8786) or its scheduler file; default: "
    "DASK_SCHEDULER_ADDRESS or the dask config's scheduler-address.",
)
@click.option("--workers", type=int, default=None, help="Start a local dask cluster of N worker processes.")
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="Output name: {stem}, {name}, {index}.")
@click.option(
    "--method", default=None, help="despeckle: sar-dps (default) or lee, ...; fuse: dps, average ..."
)
@click.option("--sensor", default=None, help="despeckle: sensor profile (see `geodiff info`).")
@units_option("every INPUT (despeckle) or SAR (fuse)")
@click.option("--looks", type=float, default=None, help="Equivalent number of looks L (default: estimated).")
@click.option("--prior", default=None, help="Diffusion prior name or path.")
@click.option("--steps", type=int, default=None, help="Diffusion steps.")
@click.option("--samples", type=int, default=None, help="despeckle sar-dps: posterior draws.")
@click.option("--uncertainty", is_flag=True, default=None, help="despeckle sar-dps: posterior-std bands.")
@click.option(
    "--estimator",
    type=click.Choice(ESTIMATORS),
    default=None,
    help="despeckle sar-dps: posterior-mean (default) or blind-spot (ratio image mean 1, no bias).",
)
@click.option("--device", default=None, help="Diffusion device: auto, cpu, cuda, cuda:1 ...")
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed (default 0): same bits for any --workers, --batch or cluster.",
)
@click.option("--window", type=int, default=None, help="despeckle classical filters: window (odd).")
@click.option("--tile", type=int, default=None, help="Tile edge in px.")
@click.option("--overlap", type=int, default=None, help="Tile overlap in px.")
@click.option("--batch", "max_batch", type=int, default=None, help="despeckle sar-dps: network batch.")
@click.option("--overwrite", is_flag=True, help="Replace outputs in OUT that this batch did not write.")
@click.option("--force", is_flag=True, help="Recompute scenes the manifest says are up to date.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-scene report as JSON on stdout.")
def command(
    inputs: tuple[str, ...],
    out_dir: str,
    job: str,
    scheduler: str | None,
    workers: int | None,
    name: str,
    units: str,
    overwrite: bool,
    force: bool,
    as_json: bool,
    **options: object,
) -> None:
    """Run the despeckle (or fuse) job on every INPUT into OUT, one output per scene.

    INPUT: files, globs, folders or .txt/.csv lists (fuse: OPTICAL,SAR pairs). A run manifest in OUT
    (geodiff-batch.jsonl) makes reruns skip finished scenes. A failed scene is recorded and the batch
    goes on; exit 1 when any failed.
    """
    from geodiff.apps.batch import run_batch, summarize
    from geodiff.cli import emit_json

    if scheduler and workers:
        raise click.UsageError("pass either --scheduler (an existing cluster) or --workers (a local one)")
    params = {k: v for k, v in options.items() if v is not None}
    if units.lower() != "auto":
        params["units" if job == "despeckle" else "sar_units"] = units.lower()
    if job == "fuse":
        bad = sorted(
            set(params) & {"sensor", "looks", "samples", "uncertainty", "window", "max_batch", "estimator"}
        )
        if bad:
            raise click.UsageError(f"--{bad[0].replace('_', '-')} is a despeckle option; not for --job fuse")

    started = time.perf_counter()
    mpx = 0.0

    def on_start(info: dict) -> None:
        where = info.get("scheduler", "in-process")
        msg = f"{info['scenes']} scene(s) on {where}" + (
            f" ({info['workers']} workers)" if "workers" in info else ""
        )
        if "dashboard" in info:
            msg += f"; dashboard {info['dashboard']}"
        click.echo(json.dumps({"event": "start", **info}) if as_json else msg, err=True)

    def on_scene(i: int, n: int, rec: dict) -> None:
        nonlocal mpx
        elapsed = time.perf_counter() - started
        if rec["status"] == "done":
            mpx += rec.get("width", 0) * rec.get("height", 0) / 1e6
        eta = elapsed / (i + 1) * (n - i - 1)
        if as_json:  # progress as JSON lines on stderr; the report on stdout
            line = {"event": "scene", "done": i + 1, "of": n, "scene": rec["scene"], "status": rec["status"],
                    "seconds": rec.get("seconds"), "elapsed_s": round(elapsed, 2), "eta_s": round(eta, 1),
                    "mpx_per_s": round(mpx / elapsed, 3) if elapsed else None}  # fmt: skip
            click.echo(json.dumps(line), err=True)
            return
        what = rec.get("error", "") if rec["status"] == "failed" else f"{rec.get('seconds', 0):.2f} s"
        click.echo(
            f"[{i + 1}/{n}] {rec['scene']}: {rec['status']} {what} "
            f"({mpx / elapsed if elapsed else 0:.2f} Mpx/s, ETA {eta:.0f} s)",
            err=True,
        )

    records = run_batch(
        inputs,
        out_dir,
        job,
        scheduler=scheduler,
        workers=workers,
        name=name,
        overwrite=overwrite,
        force=force,
        on_scene=on_scene,
        on_start=on_start,
        **params,
    )
    summary = summarize(records)
    if as_json:
        emit_json({"summary": summary, "scenes": records})
    else:
        from geodiff.apps.batch import format_table

        click.echo(format_table(records))
        click.echo(
            f"{summary['scenes']} scene(s): {summary['done']} done, {summary['skipped']} skipped "
            f"(up to date), {summary['failed']} failed; manifest {out_dir}/geodiff-batch.jsonl"
        )
    if summary["failed"]:
        click.echo(f"geodiff batch: {summary['failed']} of {summary['scenes']} scene(s) failed", err=True)
        click.get_current_context().exit(1)
