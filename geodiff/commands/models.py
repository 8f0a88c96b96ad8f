"""`geodiff models`: list the shipped and user diffusion priors."""

from __future__ import annotations

import click

from geodiff.cli import emit_json


@click.command(name="models")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON list (name, path, size_bytes, domain, ...)."
)
def command(as_json: bool) -> None:
    """List the diffusion priors geodiff can load by name (shipped, then user models)."""
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
