"""`geodiff quicklook BEFORE AFTER PNG`: a side-by-side picture of a scene before and after despeckling."""

from __future__ import annotations

import click

from geodiff.cli import units_option


@click.command("quicklook")
@click.argument("before", type=click.Path(dir_okay=False))
@click.argument("after", type=click.Path(dir_okay=False))
@click.argument("png", type=click.Path(dir_okay=False))
@click.option("--band", type=int, default=1, show_default=True, help="Band to show (1-based).")
@click.option(
    "--labels", nargs=2, default=("input", "geodiff"), show_default=True, help="Captions of the two panels."
)
@units_option("BEFORE (AFTER: its own metadata, else the same)")
def command(before: str, after: str, png: str, band: int, labels: tuple[str, str], units: str) -> None:
    """Write PNG: BEFORE and AFTER side by side on one shared dB stretch of their intensity."""
    from geodiff.apps.quicklook import before_after_png

    click.echo(before_after_png(before, after, png, band=band, labels=tuple(labels), units=units))
