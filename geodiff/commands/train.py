"""`geodiff train`: train a diffusion prior on your own imagery (folders of images and/or GeoTIFFs).

``geodiff train DATA --pack DIR`` instead writes DATA as float16 amplitude caches (<stem>.amp.npy) into DIR,
so a machine without rasterio (e.g. a GPU node) can train on them; ``geodiff models export RUN`` re-exports
a finished run.
"""

from __future__ import annotations

import logging

import click

from geodiff.cli import emit_json


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"{text!r}: give comma-separated integers such as 1,2,4") from exc


@click.command(name="train")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", type=click.Path(), help="Run folder (checkpoints, loss log, exported model).")
@click.option(
    "--pack",
    "pack_dir",
    type=click.Path(file_okay=False),
    help="Only write DATA as float16 amplitude caches (.amp.npy) into this folder, then stop.",
)
@click.option(
    "--data-root",
    type=click.Path(exists=True, file_okay=False),
    help="Record the training sources relative to this folder (default: their common folder).",
)
@click.option("--name", default="prior", show_default=True, help="Model name (file stem of the export).")
@click.option(
    "--val", "val_sources", multiple=True, type=click.Path(exists=True), help="Validation images/folders."
)
@click.option(
    "--exclude", multiple=True, help="File-name glob never used for training (e.g. '019[0-4]?.jpg')."
)
@click.option("--steps", default=10000, show_default=True, type=int)
@click.option("--max-minutes", type=float, default=None, help="Wall-clock budget; the run saves and stops.")
@click.option("--tile", default=64, show_default=True, type=int, help="Training crop size (px).")
@click.option("--batch", default=16, show_default=True, type=int)
@click.option("--width", default=32, show_default=True, type=int, help="Base channel width of the UNet.")
@click.option("--mult", default="1,2,2", show_default=True, help="Channel multipliers, one per level.")
@click.option(
    "--res-blocks",
    "num_res_blocks",
    default=1,
    show_default=True,
    type=int,
    help="Residual blocks per level.",
)
@click.option("--attention/--no-attention", default=False, show_default=True)
@click.option("--prediction", type=click.Choice(["eps", "v", "x0"]), default="eps", show_default=True)
@click.option("--lr", default=5e-4, show_default=True, type=float)
@click.option("--warmup", default=200, show_default=True, type=int)
@click.option("--ema", default=0.999, show_default=True, type=float)
@click.option("--val-every", default=200, show_default=True, type=int)
@click.option("--save-every", default=200, show_default=True, type=int)
@click.option("--threads", default=None, type=int, help="torch CPU threads (default: torch's choice).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:0 ...")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--weights-dtype",
    type=click.Choice(["float32", "float16"]),
    default="float32",
    show_default=True,
    help="dtype of the exported weights (float16 halves the file; loaded as float32).",
)
@click.option(
    "--init",
    default=None,
    help="Start from this prior's weights (name or .safetensors; fine-tuning); its architecture replaces "
    "--width/--mult/--res-blocks/--attention.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(data, out, pack_dir, mult, resume, as_json, quiet, **fields):  # noqa: ANN001 - click values
    """Train a time-conditioned UNet diffusion prior on DATA (image files and/or folders).

    Every option but --out, --pack, --mult, --resume, --json and --quiet is the TrainConfig field of its name.
    """
    from geodiff.device import resolve_device
    from geodiff.priors.train import TrainConfig, train

    if pack_dir is not None:
        _pack(data, fields["exclude"], pack_dir, as_json)
        return
    if out is None:
        raise click.UsageError("--out is required to train (or give --pack DIR to only pack DATA)")
    logging.getLogger("geodiff").setLevel(logging.INFO)
    mults, tile = _ints(mult), fields["tile"]
    if tile % (2 ** (len(mults) - 1)):
        raise ValueError(f"--tile {tile} is not a multiple of the network stride {2 ** (len(mults) - 1)}")
    resolve_device(fields["device"])  # an unavailable device fails here, before any data is read
    fields |= {"val_sources": [str(v) for v in fields["val_sources"]], "exclude": list(fields["exclude"])}
    cfg = TrainConfig(sources=[str(d) for d in data], out=str(out), channel_mult=mults, **fields)
    result = train(cfg, resume=resume, progress=not quiet)
    if as_json:
        emit_json(result)
    else:
        last = result["history"][-1] if result["history"] else {}
        click.echo(
            f"trained {result['step']} steps in {result['elapsed_s']:.0f}s; "
            f"val loss (EMA) {last.get('val_loss_ema', float('nan')):.4f}; model {result['model']}"
        )


def _pack(data: tuple[str, ...], exclude: tuple[str, ...], pack_dir: str, as_json: bool) -> None:
    """Write every training image of DATA as <pack_dir>/<stem>.amp.npy."""
    from geodiff.priors.data import expand_sources, pack_amplitude

    written = [str(pack_amplitude(f, pack_dir)) for f in expand_sources(data, exclude)]
    if as_json:
        emit_json({"packed": written})
    else:
        click.echo(f"packed {len(written)} images into {pack_dir}")
