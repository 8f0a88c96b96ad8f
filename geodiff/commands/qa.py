"""`geodiff qa ORIGINAL PROCESSED`: no-reference quality checks of a despeckled SAR scene.

Both rasters are decoded to linear intensity through the original's sensor profile (a processed
file keeps its input's convention), then compared as PROTOCOL.md §2 defines: ratio image,
radiometric bias, ENL on automatically chosen homogeneous windows.
"""

from __future__ import annotations

from typing import Any

import click

from geodiff.cli import units_option


def qa_line(name: str, r: dict[str, Any]) -> str:
    """PROTOCOL §2 of one band in one line (ratio mean ~1, L·var(r) ~1, bias ~0 dB, ENL gain), as
    `geodiff despeckle` prints it; a report that could not be made shows its error."""
    if "error" in r:
        return f"  QA {name}: {r['error']}"
    figures = {"ratio mean": "ratio_mean", "L·var(r)": "ratio_var_times_looks", "bias": "bias_db"}
    figures.update({"ENL input": "enl_input", "ENL output": "enl_output"})
    missing = [label for label, key in figures.items() if r.get(key) is None]
    if missing:  # e.g. a scene smaller than one ENL window: the output is fine, the QA has nothing to measure
        return f"  QA {name}: not measurable ({', '.join(missing)}: too few valid pixels or no variation)"
    return (
        f"  QA {name}: ratio mean {r['ratio_mean']:.3f}, L·var(r) {r['ratio_var_times_looks']:.2f}, "
        f"bias {r['bias_db']:+.2f} dB, ENL {r['enl_input']:.1f} -> {r['enl_output']:.1f}"
    )


def format_report(r: dict[str, Any]) -> str:
    """The full `geodiff qa` report of :func:`geodiff.apps.qa.qa_files` as text (one figure a line)."""

    def f(v: Any, spec: str) -> str:  # noqa: ANN401
        return "n/a" if v is None else format(v, spec)

    looks = f(r["looks"], ".3f") + f" ({r['looks_source']}"
    if "looks_interval" in r:
        looks += f", 90% interval {r['looks_interval'][0]:.3f}..{r['looks_interval'][1]:.3f}"
    looks += ")"
    return "\n".join(
        [
            f"{r['processed']}  vs  {r['original']}  (band {r['band']}, sensor {r['sensor']}, {r['units']})",
            f"  looks L                  {looks}",
            f"  ratio mean               {f(r['ratio_mean'], '.4f')}   (ideal 1.00)",
            f"  L x ratio variance       {f(r['ratio_var_times_looks'], '.4f')}"
            "   (ideal ~1; <1: speckle left in the output, >1: structure removed)",
            f"  bias                     {f(r['bias_db'], '+.4f')} dB (ideal 0.00)",
            f"  ENL input / output       {f(r['enl_input'], '.3f')} / {f(r['enl_output'], '.3f')}"
            f"   ({r['n_windows']} windows of {r['window']}x{r['window']})",
        ]
    )


@click.command("qa")
@click.argument("original", type=click.Path(dir_okay=False))
@click.argument("processed", type=click.Path(dir_okay=False))
@click.option("--looks", type=float, default=None, help="Looks L of ORIGINAL (default: estimated from it).")
@click.option("--band", type=int, default=1, show_default=True, help="Band to compare (1-based).")
@click.option(
    "--sensor",
    default="auto",
    show_default=True,
    help="Sensor profile of ORIGINAL (e.g. s1-grd-db, sar-intensity); auto: from the metadata.",
)
@units_option("ORIGINAL (PROCESSED keeps them)")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def command(
    original: str, processed: str, looks: float | None, band: int, sensor: str, units: str, as_json: bool
) -> None:
    """No-reference quality of PROCESSED (despeckled) against ORIGINAL (PROTOCOL.md §2)."""
    from geodiff.apps.qa import qa_files

    report = qa_files(original, processed, looks=looks, band=band, sensor=sensor, units=units)
    if as_json:
        from geodiff.cli import emit_json

        emit_json(report)
    else:
        click.echo(format_report(report))
