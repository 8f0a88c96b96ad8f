"""Bad input through the command line and the Python API: one clear line, the right exit code, the
input unchanged, nothing under the final name, no temporary leftovers.

Each case is a class of bad input a user meets; the message must name the problem and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from reliability.scenes import leftovers, sha256, speckled, write_scene

GOOD = ["--method", "lee", "--units", "intensity", "--looks", "4"]


def _scene(tmp: Path) -> Path:
    return write_scene(tmp / "scene.tif", speckled(48, 48))


def _truncated(tmp: Path) -> Path:
    src = write_scene(tmp / "trunc.tif", speckled(256, 256), tiled=True, blockxsize=64, blockysize=64)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    return src


def _vrt_missing_source(tmp: Path) -> Path:
    import rasterio

    src = write_scene(tmp / "part.tif", speckled(48, 48))
    vrt = tmp / "mosaic.vrt"
    with rasterio.open(src) as ds:
        from rasterio.vrt import _boundless_vrt_doc

        vrt.write_text(_boundless_vrt_doc(ds))
    src.unlink()
    return vrt


def _complex(dtype: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        import rasterio

        path = tmp / f"{dtype}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=1, dtype=dtype) as dst:
            dst.write(np.full((1, 32, 32), 3 + 4j, np.complex64))
        return path

    return make


def _const(value: float, nodata: float | None = None) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        extra = {} if nodata is None else {"nodata": nodata}
        return write_scene(tmp / "const.tif", np.full((32, 32), value, np.float32), **extra)

    return make


def _text(tmp: Path) -> Path:
    p = tmp / "notes.tif"
    p.write_text("not a raster\n")
    return p


def _empty(tmp: Path) -> Path:
    p = tmp / "empty.tif"
    p.write_bytes(b"")
    return p


# (id, input builder, extra CLI args (OUT is "out/out.tif" unless the args say otherwise), exit code, message)
CLI_CASES = [
    ("missing-input", lambda t: t / "nope.tif", GOOD, 2, r"no such file"),
    ("input-is-folder", lambda t: t, GOOD, 2, r"folder"),
    ("empty-input", _empty, GOOD, 2, r"empty"),
    ("text-input", _text, GOOD, 2, r"not a raster|cannot open|not recognized|GDAL"),
    (
        "truncated-geotiff",
        _truncated,
        GOOD,
        2,
        r"trunc\.tif: rows \d+-\d+, cols \d+-\d+ could not be read.*again",
    ),
    ("vrt-missing-source", _vrt_missing_source, GOOD, 2, r"part\.tif|mosaic\.vrt"),
    ("complex-cfloat32", _complex("complex64"), ["--method", "lee"], 2, r"complex \(SLC\)"),
    ("complex-cint16", _complex("complex_int16"), ["--method", "lee"], 2, r"complex \(SLC\)"),
    ("all-zero", _const(0.0), ["--method", "lee", "--units", "intensity"], 2, r"nodata|zero"),
    ("all-zero-sar-dps", _const(0.0), ["--units", "intensity", "--steps", "1"], 2, r"nodata|zero"),
    ("all-nodata", _const(-9999.0, -9999.0), GOOD, 2, r"nodata"),
    ("out-png", _scene, [*GOOD, "OUT=out/out.png"], 2, r"\.tif, \.tiff"),
    ("out-jpg", _scene, [*GOOD, "OUT=out/out.jpg"], 2, r"\.tif, \.tiff"),
    ("out-nc", _scene, [*GOOD, "OUT=out/out.nc"], 2, r"\.tif, \.tiff"),
    ("out-no-extension", _scene, [*GOOD, "OUT=out/out"], 2, r"no extension.*\.tif, \.tiff"),
    ("out-folder-missing", _scene, [*GOOD, "OUT=nowhere/out.tif"], 2, r"does not exist.*mkdir"),
    ("out-is-folder", _scene, [*GOOD, "OUT=out"], 2, r"is a folder"),
    ("out-is-input", _scene, [*GOOD, "OUT=scene.tif"], 2, r"output is the input"),
    ("out-exists", _scene, [*GOOD, "OUT=out/old.tif"], 2, r"already exists; pass --overwrite"),
    ("tile-0", _scene, [*GOOD, "--tile", "0"], 2, r"--tile 0 must be an integer >= 1"),
    ("tile-negative", _scene, [*GOOD, "--tile", "-64"], 2, r"--tile -64 must be an integer >= 1"),
    ("workers-0", _scene, [*GOOD, "--workers", "0"], 2, r"--workers 0 must be an integer >= 1"),
    ("workers-negative", _scene, [*GOOD, "--workers", "-2"], 2, r"--workers -2 must be an integer >= 1"),
    ("overlap-negative", _scene, [*GOOD, "--overlap", "-1"], 2, r"--overlap -1 must be an integer >= 0"),
    ("device-tpu", _scene, ["--units", "intensity", "--device", "tpu"], 2, r"'tpu' is not a device.*cpu"),
    ("looks-0", _scene, ["--method", "lee", "--units", "intensity", "--looks", "0"], 2, r"looks=0.0 must be"),
    ("looks-negative", _scene, ["--method", "lee", "--units", "intensity", "--looks", "-3"], 2, r"> 0"),
    ("looks-nan", _scene, ["--method", "lee", "--units", "intensity", "--looks", "nan"], 2, r"finite"),
    (
        "samples-1-uncertainty",
        _scene,
        ["--units", "intensity", "--samples", "1", "--uncertainty"],
        2,
        r"--samples >= 2",
    ),
    ("samples-0", _scene, ["--units", "intensity", "--samples", "0"], 2, r"--samples 0 must be"),
    ("steps-0", _scene, ["--units", "intensity", "--steps", "0"], 2, r"--steps 0 must be"),
    ("batch-0", _scene, ["--units", "intensity", "--batch", "0"], 2, r"--batch 0 must be"),
    ("uncertainty-with-lee", _scene, [*GOOD, "--uncertainty"], 2, r"sampling method"),
    ("even-window", _scene, [*GOOD, "--window", "4"], 2, r"window"),
    ("unknown-sensor", _scene, [*GOOD, "--sensor", "landsat-99"], 2, r"landsat-99"),
    (
        "ambiguous-units",
        _scene,
        ["--method", "lee", "--looks", "4", "--units", "auto", "OUT=out/o.tif", "TINY"],
        2,
        r"--units",
    ),
]


@pytest.mark.parametrize(
    ("make", "args", "code", "message"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES]
)
def test_cli_bad_input(invoke, tmp_path: Path, make, args, code, message) -> None:  # noqa: ANN001
    import re

    work = tmp_path / "work"
    work.mkdir()
    (work / "out").mkdir()
    (work / "out" / "old.tif").write_bytes(b"keep me")
    src = make(work)
    if "TINY" in args:  # too small to tell its units from the values
        src = write_scene(work / "tiny.tif", speckled(6, 6))
        args = [a for a in args if a != "TINY"]
    out_arg = next((a[4:] for a in args if a.startswith("OUT=")), "out/out.tif")
    args = [a for a in args if not a.startswith("OUT=")]
    out = work / out_arg
    inputs = {p: sha256(p) for p in work.rglob("*") if p.is_file()}
    existed = out.exists()
    res = invoke("despeckle", src, out, *args)
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    lines = [
        ln for ln in res.output.strip().splitlines() if ln.startswith("geodiff:") or ln.startswith("Error:")
    ]
    assert lines, res.output
    assert re.search(message, lines[-1]), lines[-1]
    assert {p: sha256(p) for p in inputs if p.exists()} == inputs  # nothing modified or removed
    if not existed and out.suffix:
        assert not out.exists()
    assert leftovers(work / "out") == [] and leftovers(work) == []


def _api_cases() -> list:
    import geodiff
    from geodiff.errors import InputError, InvalidSettingError, UnknownMethodError

    a = speckled(32, 32)
    return [
        (
            "keyword-typo",
            lambda: geodiff.despeckle(a, method="lee", looks=4, units="intensity", windw=5),
            InvalidSettingError,
            r"'windw'.*did you mean 'window'",
        ),
        (
            "sar-dps-keyword-typo",
            lambda: geodiff.despeckle(a, looks=4, units="intensity", step=2),
            InvalidSettingError,
            r"'step'.*did you mean 'steps'",
        ),
        (
            "looks-string",
            lambda: geodiff.despeckle(a, method="lee", looks="4", units="intensity"),
            InvalidSettingError,
            r"looks='4' must be a number",
        ),
        (
            "looks-bool",
            lambda: geodiff.despeckle(a, method="lee", looks=True, units="intensity"),
            InvalidSettingError,
            r"must be a number",
        ),
        (
            "uncertainty-lee",
            lambda: geodiff.despeckle(a, method="lee", looks=4, units="intensity", uncertainty=True),
            ValueError,
            r"sampling method",
        ),
        (
            "uncertainty-1-sample",
            lambda: geodiff.despeckle(a, looks=4, units="intensity", samples=1, uncertainty=True),
            InvalidSettingError,
            r"samples >= 2",
        ),
        (
            "complex-array",
            lambda: geodiff.despeckle(a.astype(np.complex64), method="lee", looks=4),
            ValueError,
            r"complex",
        ),
        (
            "4d-array",
            lambda: geodiff.despeckle(a[None, None, None], method="lee", looks=4, units="intensity"),
            InputError,
            r".",
        ),
        ("unknown-method", lambda: geodiff.despeckle(a, method="nlm", looks=4), UnknownMethodError, r"lee"),
        (
            "file-without-out",
            lambda: geodiff.despeckle("scene.tif", method="lee"),
            InvalidSettingError,
            r"out=",
        ),
        (
            "tile-0",
            lambda: geodiff.despeckle(a, method="lee", looks=4, units="intensity", tile=0),
            ValueError,
            r"tile",
        ),
    ]


API_IDS = [
    *("keyword-typo", "sar-dps-keyword-typo", "looks-string", "looks-bool", "uncertainty-lee"),
    *("uncertainty-1-sample", "complex-array", "4d-array", "unknown-method", "file-without-out", "tile-0"),
]


@pytest.mark.parametrize("case", API_IDS)
def test_api_bad_input(case: str) -> None:
    import re

    _, call, exc_type, message = next(c for c in _api_cases() if c[0] == case)
    with pytest.raises(exc_type) as info:
        call()
    text = str(info.value)
    assert "\n" not in text.strip() and re.search(message, text), text
    assert not isinstance(info.value, (TypeError, AttributeError))


def test_looks_so_large_that_nothing_changes_is_warned() -> None:
    import geodiff

    with pytest.warns(UserWarning, match="result will equal the input"):
        geodiff.despeckle(speckled(32, 32), method="lee", looks=1e9, units="intensity", progress=False)
