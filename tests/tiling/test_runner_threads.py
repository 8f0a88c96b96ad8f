"""Blocks in flight: an in-process run that computes several blocks at once (the CUDA default) writes the
same bits as one block at a time, in order, and a failing block stops the run."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tiling.plan import TileSpec
from tiling.runner import RunOptions, blocks_in_flight, run_raster

SPEC = TileSpec(tile=32, overlap=6, halo=2, block_tiles=1)  # 150 x 131 px, stride 26: 6 x 6 = 36 blocks


def seeded_noise(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
    """Per-tile seeds and the blend hook: the block's result depends on the block alone."""
    return t + 0.1 * ctx.randn(tuple(t.shape[1:]), dtype=t.dtype)


def _run(scene: Path, out: Path, fn, in_flight: int | None) -> dict:  # noqa: ANN001
    return run_raster(str(scene), str(out), fn, SPEC, seed=3, options=RunOptions(blocks_in_flight=in_flight))


def test_blocks_in_flight_write_the_same_bits_as_one_at_a_time(nodata_scene: Path, tmp_path: Path,
                                                                read_tif) -> None:  # fmt: skip  # noqa: ANN001
    ref = _run(nodata_scene, tmp_path / "one.tif", seeded_noise, 1)
    assert ref["blocks"] == 36
    calls: list[str] = []
    lock = threading.Lock()

    def counted(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
        with lock:
            calls.append(threading.current_thread().name)
        return seeded_noise(t, ctx)

    for n in (2, 3):
        _run(nodata_scene, tmp_path / f"n{n}.tif", counted, n)
        one, many = read_tif(tmp_path / "one.tif"), read_tif(tmp_path / f"n{n}.tif")
        assert np.array_equal(one, many, equal_nan=True)
    assert len(calls) == 72 and all(name.startswith("geodiff-block") for name in calls)  # worker threads
    assert (tmp_path / "one.tif").read_bytes() == (tmp_path / "n2.tif").read_bytes()


def test_a_failing_block_stops_the_run_and_nothing_appears(nodata_scene: Path, tmp_path: Path) -> None:
    started = []
    lock = threading.Lock()

    def fails_on_the_fourth(t: torch.Tensor, ctx) -> torch.Tensor:  # noqa: ANN001
        with lock:
            started.append(ctx.block.index)
            n = len(started)
        if n == 4:
            raise ValueError("block four is bad")
        return t

    with pytest.raises(ValueError, match="block four is bad"):
        _run(nodata_scene, tmp_path / "out.tif", fails_on_the_fourth, 2)
    assert not (tmp_path / "out.tif").exists()
    assert not [p for p in tmp_path.iterdir() if p.name != "out.tif"]  # no scratch left
    assert len(started) <= 4 + 2  # the blocks not started when it failed never start


def test_blocks_in_flight_rule() -> None:
    assert blocks_in_flight(RunOptions()) == 1
    assert blocks_in_flight(RunOptions(device="cuda")) == 2
    assert blocks_in_flight(RunOptions(), [SimpleNamespace(device="cuda:1")]) == 2
    assert blocks_in_flight(RunOptions(), [SimpleNamespace(device="cpu")]) == 1
    assert blocks_in_flight(RunOptions(device="cuda", blocks_in_flight=1)) == 1
    with pytest.raises(ValueError, match="blocks_in_flight must be >= 1"):
        blocks_in_flight(RunOptions(blocks_in_flight=0))
