"""Resume state of run_raster: an interrupted run keeps its verified blocks, a rerun with the same
input and parameters computes only the rest (bit-identical output), anything else starts fresh."""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geodiff.apps.despeckle.methods import _classical_block
from tiling.errors import OutputBusyError
from tiling.plan import TileSpec
from tiling.resume import JOURNAL, BlockJournal, resume_folder
from tiling.runner import RasterOutput, run_raster

SPEC = TileSpec(tile=32, overlap=0, halo=2, block_tiles=1)  # 150 x 131 px: 5 x 5 = 25 blocks
LEE = functools.partial(_classical_block, name="lee", looks=2.0, window=5, units="intensity")
PARAMS = {"method": "lee", "window": 5}


class Counting:
    """The Lee block function, counting calls and raising KeyboardInterrupt at call ``stop``."""

    def __init__(self, stop: int | None = None) -> None:
        self.calls, self.stop = 0, stop

    def __call__(self, block: np.ndarray, valid: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.stop is not None and self.calls > self.stop:
            raise KeyboardInterrupt
        return LEE(block, valid)


def _run(src: Path, out: Path, fn, params=PARAMS) -> dict:  # noqa: ANN001
    return run_raster(src, out, fn, SPEC, kind="array", output=RasterOutput(resume=params))


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def _interrupt(src: Path, out: Path, after: int, params=PARAMS) -> None:  # noqa: ANN001
    with pytest.raises(KeyboardInterrupt):
        _run(src, out, Counting(after), params)
    assert not out.exists()


def test_an_interrupted_run_continues_from_its_blocks(nodata_scene: Path, tmp_path: Path, caplog) -> None:  # noqa: ANN001
    ref = _run(nodata_scene, tmp_path / "ref.tif", LEE)
    assert ref["blocks"] == 25 and ref["blocks_computed"] == 25 and ref["blocks_resumed"] == 0
    out = tmp_path / "out.tif"
    _interrupt(nodata_scene, out, after=10)
    state = resume_folder(out)
    assert len(list(state.glob("g0-*.npy"))) == 10  # the finished blocks, durable
    assert "rerun the same command to continue" in caplog.text
    fn = Counting()
    with caplog.at_level(logging.WARNING):
        summary = _run(nodata_scene, out, fn)
    assert fn.calls == 15 and summary["blocks_resumed"] == 10 and summary["blocks_computed"] == 15
    assert "continuing an interrupted run: 10 finished block(s)" in caplog.text
    assert np.array_equal(_read(out), _read(tmp_path / "ref.tif"), equal_nan=True)
    assert not state.exists()  # removed on success
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif", "ref.tif"]


def test_other_parameters_or_a_changed_input_start_fresh(nodata_scene: Path, tmp_path: Path, caplog) -> None:  # noqa: ANN001
    src = tmp_path / "in.tif"
    src.write_bytes(nodata_scene.read_bytes())
    out = tmp_path / "out.tif"
    _interrupt(src, out, after=6)
    fn = Counting(8)
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        _run(src, out, fn, {**PARAMS, "window": 7})
    assert fn.calls == 9  # nothing reused
    assert "the parameters differ from the interrupted run's (params)" in caplog.text
    caplog.clear()
    os.utime(src, ns=(1, 1))  # same parameters, but the input was touched
    fn = Counting()
    with caplog.at_level(logging.WARNING):
        summary = _run(src, out, fn)
    assert fn.calls == 25 and summary["blocks_resumed"] == 0
    assert "the input changed since the interrupted run" in caplog.text


def test_a_corrupt_saved_block_is_computed_again(nodata_scene: Path, tmp_path: Path, caplog) -> None:  # noqa: ANN001
    _run(nodata_scene, tmp_path / "ref.tif", LEE)
    out = tmp_path / "out.tif"
    _interrupt(nodata_scene, out, after=5)
    victim = sorted(resume_folder(out).glob("g0-*.npy"))[0]
    raw = bytearray(victim.read_bytes())
    raw[-1] ^= 0xFF  # one flipped bit of pixels
    victim.write_bytes(bytes(raw))
    (resume_folder(out) / JOURNAL).open("a").write('{"group": 0, "row"')  # a torn last line
    fn = Counting()
    with caplog.at_level(logging.WARNING):
        summary = _run(nodata_scene, out, fn)
    assert summary["blocks_resumed"] == 4 and fn.calls == 21
    assert "fails verification (checksum differs)" in caplog.text
    assert np.array_equal(_read(out), _read(tmp_path / "ref.tif"), equal_nan=True)


def test_bad_input_removes_the_state(tmp_path: Path, write_tif) -> None:  # noqa: ANN001
    src = write_tif(tmp_path / "nodata.tif", np.full((1, 64, 64), -1, np.float32), nodata=-1.0)
    out = tmp_path / "out.tif"
    with pytest.raises(ValueError, match="every pixel is nodata"):
        _run(src, out, LEE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nodata.tif"]


def test_no_state_without_resume_parameters_or_for_one_block(nodata_scene: Path, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_raster(nodata_scene, tmp_path / "a.tif", Counting(3), SPEC, kind="array")
    one = TileSpec(tile=256, overlap=0, halo=2, block_tiles=1)
    with pytest.raises(KeyboardInterrupt):
        run_raster(
            nodata_scene, tmp_path / "b.tif", Counting(0), one, kind="array", output=RasterOutput(resume={})
        )
    assert list(tmp_path.iterdir()) == []


def test_a_live_run_holds_its_state(tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    with BlockJournal(out, {"input": "x"}), pytest.raises(OutputBusyError, match="another geodiff run"):
        with BlockJournal(out, {"input": "x"}):
            pass
    header = json.loads((resume_folder(out) / JOURNAL).read_text().splitlines()[0])
    assert header["description"] == {"version": 1, "input": "x"}
