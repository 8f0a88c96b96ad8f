"""The `geodiff` command line.

Conventions every command follows: exit 0 on success, 1 when processing failed, 2 for bad
input or usage; one-line errors on stderr (a traceback only with --debug); --json for
machine-readable output on stdout; progress on stderr.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from geodiff import __version__
from geodiff.errors import exit_code

log = logging.getLogger("geodiff")


#: --units choices: the SAR units a user may declare, or auto (the one units detector).
UNITS_CHOICES = ("auto", "intensity", "amplitude", "db")


def units_option(what: str, *param_decls: str) -> Callable[[Callable], Callable]:
    """The ``--units`` option of a command that reads SAR ``what`` (e.g. "IN (OUT keeps them)")."""
    return click.option(
        "--units",
        *param_decls,
        type=click.Choice(UNITS_CHOICES, case_sensitive=False),
        default="auto",
        show_default=True,
        help=f"SAR units of {what}; auto: from the metadata, else the values where they are decisive.",
    )


def emit_json(obj: Any) -> None:
    """Write one JSON document to stdout."""
    click.echo(json.dumps(obj, indent=2, default=str))


# Subcommands live in geodiff/commands/<module>.py, each exposing a click command named `command`.
# They are imported lazily so that `geodiff info` does not pay for importing torch.
LAZY_COMMANDS: dict[str, str] = {
    "batch": "geodiff.commands.batch",
    "despeckle": "geodiff.commands.despeckle",
    "fuse": "geodiff.commands.fuse",
    "qa": "geodiff.commands.qa",
    "models": "geodiff.commands.models",
    "train": "geodiff.commands.train",
    "plan": "geodiff.commands.plan",
    "quicklook": "geodiff.commands.quicklook",
}


class GeodiffGroup(click.Group):
    """Click group with lazy subcommands that turns exceptions into one-line errors and exit codes."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, the lazy ones included (without importing them)."""
        present = [n for n, m in LAZY_COMMANDS.items() if importlib.util.find_spec(m) is not None]
        return sorted(set(super().list_commands(ctx)) | set(present))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing its module on first use."""
        module = LAZY_COMMANDS.get(cmd_name)
        if module is not None and importlib.util.find_spec(module) is not None:
            return importlib.import_module(module).command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; an exception becomes a one-line error and :func:`geodiff.errors.exit_code`."""
        debug = bool(ctx.params.get("debug")) or "--debug" in sys.argv
        from tiling.atomic import handle_termination

        try:
            with handle_termination():  # SIGTERM / SIGHUP unwind like Ctrl-C: temporary files go
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C, or tiling.atomic.Terminated (SIGTERM, SIGHUP)
            how = str(exc) if getattr(exc, "signum", None) else "interrupted"
            click.echo(f"geodiff: {how}; no output was written under the final name", err=True)
            ctx.exit(exit_code(exc))
        except Exception as exc:  # noqa: BLE001 - the CLI boundary reports everything in one line
            if debug:
                raise
            code = exit_code(exc)  # geodiff.errors: 2 bad input or request, 1 processing failed
            if code == 2:
                click.echo(f"geodiff: error: {exc}", err=True)
            else:
                name = type(exc).__name__
                click.echo(f"geodiff: failed: {name}: {exc} (rerun with --debug for details)", err=True)
            ctx.exit(code)


@click.group(cls=GeodiffGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="geodiff")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", is_flag=True, help="Show info logs on stderr.")
def cli(debug: bool, verbose: bool) -> None:
    """Despeckle SAR and fuse optical with SAR imagery by diffusion posterior sampling."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.captureWarnings(True)


@cli.command()
@click.argument("scene", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--sensor", default="auto", show_default=True, help="Sensor profile (e.g. s1-grd-db); auto: detect."
)
@units_option("SCENE (else: ambiguous)")
def info(scene: str, as_json: bool, sensor: str, units: str) -> None:
    """Print size, georeferencing, value ranges, units and their evidence, sensor and looks of SCENE."""
    from geodiff.apps.info import format_info, scene_info

    facts = scene_info(scene, sensor=sensor, units=units)
    if as_json:
        emit_json(facts)
    else:
        click.echo(format_info(facts))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="geodiff")


if __name__ == "__main__":
    main()
