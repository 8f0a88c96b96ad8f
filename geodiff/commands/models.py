"""`geodiff models`: list the shipped and user diffusion priors; `geodiff models export RUN`: export a run."""

from __future__ import annotations

import click

from geodiff.cli import emit_json


@click.group(name="models", invoke_without_command=True)
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON list (name, path, size_bytes, domain, ...)."
)
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> None:
    """List the diffusion priors geodiff can load by name (shipped, then user models)."""
    if ctx.invoked_subcommand is not None:
        return
    from geodiff.priors.registry import list_models, user_dirs

    models = list_models()
    if as_json:
        emit_json(models)
        return
    if not models:
        click.echo(f"no models found; put <name>.safetensors + <name>.json in {user_dirs()[0]}")
        return
    click.echo(f"{'name':<16} {'domain':<11} {'size':>9} {'params':>9} {'steps':>7}  origin   path")
    for m in models:
        size = f"{m['size_bytes'] / 1e6:.2f} MB"
        click.echo(
            f"{m['name']:<16} {str(m.get('domain')):<11} {size:>9} {str(m.get('parameters') or '-'):>9} "
            f"{str(m.get('training_steps') or '-'):>7}  {m['origin']:<8} {m['path']}"
        )


@command.command(name="export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--weights",
    type=click.Choice(["best", "ema", "raw"]),
    default="best",
    show_default=True,
    help="Export the EMA or the raw weights; 'best' takes the one with the lower final validation loss.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the choice and the final losses as JSON.")
def export_command(run_dir: str, weights: str, as_json: bool) -> None:
    """Re-export the model of the training run in RUN_DIR (<name>.safetensors + <name>.json there)."""
    from geodiff.priors.train import export_best

    result = export_best(run_dir, weights)
    if as_json:
        emit_json(result)
    else:
        click.echo(
            f"exported the {result['weights']} weights of step {result['step']} "
            f"(val loss EMA {result['val_loss_ema']:.4f}, raw {result['val_loss_raw']:.4f})"
        )
