"""`geodiff despeckle IN OUT`: despeckle a whole scene into a Cloud-Optimized GeoTIFF."""

from __future__ import annotations

import click

from geodiff.apps.despeckle import METHODS
from geodiff.apps.despeckle.sar_dps import DEFAULTS, ESTIMATORS, PROFILES
from geodiff.cli import units_option


@click.command("despeckle")
@click.argument("in_path", metavar="IN", type=click.Path(dir_okay=True))
@click.argument("out_path", metavar="OUT", type=click.Path(dir_okay=True))
@click.option(
    "--method",
    type=click.Choice(sorted(METHODS)),
    default="sar-dps",
    show_default=True,
    help="sar-dps (diffusion posterior sampling) or a classical filter.",
)
@click.option("--sensor", default="auto", show_default=True, help="Sensor profile (see `geodiff info`).")
@units_option("IN (OUT keeps them)")
@click.option("--looks", type=float, default=None, help="Equivalent number of looks L (default: estimated).")
@click.option("--prior", default=DEFAULTS["prior"], show_default=True, help="sar-dps: prior name or path.")
@click.option(
    "--profile",
    type=click.Choice(["auto", *PROFILES]),
    default="auto",
    show_default=True,
    help="sar-dps: sampler profile (fast <= BM3D-log's CPU time, balanced, best); auto: balanced on the "
    "CPU, best on CUDA. From two likelihood looks on, a profile returns one log-amplitude Tweedie step "
    "instead of sampling (not with --uncertainty). --steps/--samples override its fields (and sample).",
)
@click.option(
    "--estimator",
    type=click.Choice(ESTIMATORS),
    default=DEFAULTS["estimator"],
    show_default=True,
    help="sar-dps: posterior-mean (best PSNR), or blind-spot: each pixel estimated without its own "
    "speckle and its correlated neighbours', so the ratio image's mean is 1 in expectation (0.985-1.011 on "
    "the shared real scenes, where the posterior mean's can fall to 0.89) with no bias, at a PSNR cost and "
    "about 3x the time: (2r+2)^2 PnP-ADMM passes, r = 1 on correlated speckle (16), 0 on white (4); "
    "--profile fast runs 2 ADMM iterations per pass, balanced/best 3. No --uncertainty, --steps, --samples.",
)
@click.option("--steps", type=int, default=None, help="sar-dps: refinement steps (default: the profile's).")
@click.option("--samples", type=int, default=None, help="sar-dps: posterior draws (default: the profile's).")
@click.option(
    "--likelihood-looks",
    type=float,
    default=None,
    help="sar-dps: looks of the i.i.d. speckle likelihood (default: --looks over the speckle's measured "
    "spatial correlation; pass the looks themselves for white speckle, e.g. synthetic).",
)
@click.option("--uncertainty", is_flag=True, help="sar-dps: add a posterior-std band per input band.")
@click.option("--device", default="auto", show_default=True, help="sar-dps: auto, cpu, cuda, cuda:1 ...")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed: same input, seed and options give the same bits for any --batch, --workers or cluster "
    "(--tile and --overlap change the sampling).",
)
@click.option("--window", type=int, default=7, show_default=True, help="Classical filters: window (odd).")
@click.option("--tile", type=int, default=None, help="Tile edge in px (sar-dps 288; filters: block 1024).")
@click.option("--overlap", type=int, default=None, help="Tile overlap in px (sar-dps, default 32).")
@click.option("--batch", type=int, default=None, help="sar-dps: network batch (tiles x samples), default 16.")
@click.option("--workers", type=int, default=None, help="Dask worker processes (default: run in-process).")
@click.option(
    "--scheduler",
    default=None,
    help="Run on an existing dask cluster: scheduler address (tcp://host:8786) or scheduler file; "
    "default: DASK_SCHEDULER_ADDRESS or the dask config's scheduler-address.",
)
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def command(
    in_path: str,
    out_path: str,
    method: str,
    sensor: str,
    units: str,
    looks: float | None,
    prior: str,
    profile: str,
    estimator: str,
    steps: int | None,
    samples: int | None,
    likelihood_looks: float | None,
    uncertainty: bool,
    device: str,
    seed: int,
    window: int,
    tile: int | None,
    overlap: int | None,
    batch: int | None,
    workers: int | None,
    scheduler: str | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Despeckle IN (intensity, amplitude or dB) into OUT, keeping its georeferencing and units."""
    from geodiff.apps.despeckle import despeckle_scene
    from geodiff.cli import emit_json
    from geodiff.commands.qa import qa_line
    from tiling.runner import dask_client

    if scheduler and workers:
        raise click.UsageError("pass either --scheduler (an existing cluster) or --workers (a local one)")
    if workers is not None:
        from geodiff.apps.despeckle.methods import check_count

        check_count("workers", workers, 1)

    options = {}
    if METHODS[method].kind != "tiles" and estimator != DEFAULTS["estimator"]:
        raise click.UsageError(
            f"--estimator {estimator} is a sar-dps setting; {method} is a classical filter (drop --estimator)"
        )
    if METHODS[method].kind == "tiles":
        options = dict(
            prior=prior,
            profile=profile,
            estimator=estimator,
            steps=steps,
            samples=samples,
            device=device,
            max_batch=batch,
            likelihood_looks=likelihood_looks,
        )
    with dask_client(workers=workers, scheduler=scheduler) as client:
        summary = despeckle_scene(
            in_path,
            out_path,
            method,
            looks=looks,
            units=None if units.lower() == "auto" else units,
            sensor=sensor,
            window=window,
            tile=tile,
            overlap=overlap,
            client=client,
            overwrite=overwrite,
            seed=seed,
            uncertainty=uncertainty,
            **options,
        )
    if as_json:
        emit_json(summary)
        return
    how = f"window {window}"
    if METHODS[method].kind == "tiles":
        cfg = summary.get("settings", {})
        how = (
            f"profile {cfg.get('profile')}: {cfg.get('admm_iters')} ADMM iterations + "
            f"{cfg.get('steps')} steps x {cfg.get('samples')} samples"
        )
        if cfg.get("solver") == "sar_blind_spot":
            from geodiff.solvers.blind_spot import blind_spot_stride

            radius = int(cfg.get("blind_spot_radius") or 0)
            how = (
                f"profile {cfg.get('profile')}: blind-spot estimate, radius {radius} px, "
                f"{blind_spot_stride(radius) ** 2} passes x {cfg.get('admm_iters')} ADMM iterations"
            )
        elif cfg.get("solver") == "log_tweedie":
            how = f"profile {cfg.get('profile')}: log-amplitude Tweedie, {cfg['log_tweedie']} orientations"
    click.echo(
        f"{summary['output']}: {method}, L={summary['looks']:.3g}, {how}, "
        f"{summary['width']}x{summary['height']} px, {summary['bands']} band(s)"
        f"{' + as many posterior-std bands' if uncertainty else ''} ({summary['units']})"
    )
    for i, report in enumerate(summary.get("qa", [])):
        click.echo(qa_line(f"band {i + 1}", report))
