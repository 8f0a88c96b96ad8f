"""geodiff.errors: the apps raise specific exception classes (still builtins), the CLI maps them to
exit codes (2 bad input or request, 1 processing failed)."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pytest
import xarray as xr

import geodiff
from geodiff import errors
from geodiff.apps.despeckle import build, despeckle_scene
from geodiff.apps.fuse import FusionConfig, fuse_arrays, fuse_scene
from geodiff.apps.qa import qa_files

OPT = np.ones((3, 32, 32))
SAR = np.ones((32, 32))

CASES = {
    "unknown despeckler": (lambda: geodiff.despeckle(SAR, method="nope"), errors.UnknownMethodError),
    "1-D array": (lambda: geodiff.despeckle(np.zeros(5)), errors.InputError),
    "a Dataset": (lambda: geodiff.despeckle(xr.Dataset({"a": (("y", "x"), SAR)})), errors.InputError),
    "file without out": (lambda: geodiff.despeckle("x.tif"), errors.InvalidSettingError),
    "looks <= 0": (lambda: build("lee", looks=0, units="intensity"), errors.InvalidSettingError),
    "filter uncertainty": (
        lambda: build("lee", looks=1, units="intensity", uncertainty=True),
        errors.UncertaintyNotSupportedError,
    ),
    "sampler without sample": (
        lambda: build("sar-dps", looks=1, units="intensity"),
        errors.InvalidSettingError,
    ),
    "not one grid": (lambda: fuse_arrays(OPT, np.ones((30, 32)), method="average"), errors.GridMismatchError),
    "two SAR bands": (lambda: fuse_arrays(OPT, np.ones((2, 32, 32)), method="average"), errors.InputError),
    "negative weight": (lambda: fuse_arrays(OPT, SAR, weights=(1, -1, 1, 1)), errors.InvalidSettingError),
    "unknown fusion": (lambda: fuse_arrays(OPT, SAR, method="magic"), errors.UnknownMethodError),
    "no common pixel": (
        lambda: fuse_arrays(OPT, np.full((32, 32), np.nan), method="average"),
        errors.NoValidPixelsError,
    ),
    "steps 0": (lambda: FusionConfig(steps=0), errors.InvalidSettingError),
    "unknown setting": (lambda: FusionConfig.of(None, stepz=3), errors.InvalidSettingError),
    "no fusion tag": (lambda: FusionConfig.from_tags({}), errors.InvalidSettingError),
    "unknown despeckler to fuse": (lambda: FusionConfig(despeckle_sar="nope"), errors.UnknownMethodError),
}


@pytest.mark.parametrize("case", list(CASES))
def test_specific_error_types(case: str) -> None:
    call, kind = CASES[case]
    with pytest.raises(kind) as info:
        call()
    assert isinstance(info.value, ValueError) and errors.exit_code(info.value) == 2


def test_file_jobs_raise_specific_errors(sar_crop: Path, fusion_pair, tmp_path: Path) -> None:
    with pytest.raises(errors.UncertaintyNotSupportedError):
        despeckle_scene(sar_crop, tmp_path / "o.tif", "lee", looks=1.0, uncertainty=True, progress=False)
    with pytest.raises(errors.InvalidSettingError, match="--band 3"):
        qa_files(sar_crop, sar_crop, looks=1.0, band=3)
    opt, sar = fusion_pair
    with pytest.raises(errors.SwappedInputsError, match="OPTICAL SAR OUT"):
        fuse_scene(sar, opt, tmp_path / "f.tif", method="average")
    with pytest.raises(errors.InvalidSettingError, match="--sar-band 3"):
        fuse_scene(opt, sar, tmp_path / "f.tif", method="average", sar_band=3)
    (tmp_path / "f.tif").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="--overwrite"):
        fuse_scene(opt, sar, tmp_path / "f.tif", method="average")
    assert not list(tmp_path.glob("o.tif*"))


def test_lower_layers_errors_are_reexported() -> None:
    from sensors.errors import AmbiguousUnitsError
    from tiling.errors import OutputExistsError

    assert errors.AmbiguousUnitsError is AmbiguousUnitsError and errors.OutputExistsError is OutputExistsError
    assert {"AmbiguousUnitsError", "OutputExistsError", "UnknownMethodError"} <= set(errors.__all__)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.ProcessingError("tile 3 failed"), 1),
        (RuntimeError("CUDA out of memory"), 1),
        (errors.InputError("bad shape"), 2),
        (errors.GridMismatchError("not one grid"), 2),
        (FileNotFoundError("missing.tif"), 2),
        (PermissionError("read-only folder"), 2),
    ],
)
def test_cli_exit_codes(invoke, exc: Exception, code: int) -> None:
    from geodiff.cli import cli

    @click.command("raise-for-test")
    def raiser() -> None:
        raise exc

    cli.add_command(raiser)
    try:
        res = invoke("raise-for-test")
    finally:
        cli.commands.pop("raise-for-test")
    assert res.exit_code == code == errors.exit_code(exc)
    assert str(exc) in res.output and "Traceback" not in res.output
    assert ("geodiff: error:" if code == 2 else "geodiff: failed:") in res.output
