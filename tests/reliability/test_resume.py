"""A real `geodiff despeckle` killed with SIGKILL in mid-run continues from its verified blocks.

Before the fix a rerun removed the killed run's leftovers and started again from block 0. Now every
finished block is saved beside the output (tiling.resume); the rerun with the same input and
parameters recomputes none of the finished blocks (at most 10 % are allowed), writes a file
bit-identical to an uninterrupted run and leaves nothing else in the folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from reliability.scenes import leftovers, sha256, speckled, write_scene

from tiling.resume import JOURNAL, resume_folder

pytestmark = pytest.mark.slow
GEODIFF = [sys.executable, "-m", "geodiff"]
LEE = ["--method", "lee", "--looks", "4", "--tile", "64"]  # 512 x 512 px: 64 blocks
LEE_4096 = ["--method", "lee", "--looks", "4", "--tile", "512"]  # 4096 x 4096 px: 64 blocks
DPS = [
    "--units",
    "intensity",
    "--looks",
    "4",
    "--steps",
    "1",
    "--samples",
    "1",
    "--tile",
    "32",
    "--overlap",
    "8",
]


def finished_blocks(out: Path) -> int:
    """Blocks the journal lists as finished (complete lines only)."""
    try:
        text = (resume_folder(out) / JOURNAL).read_text()
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if '"file"' in line and line.endswith("}"))


def kill_after(args: list[str], out: Path, blocks: int, timeout: float = 300) -> int:
    """Start `geodiff despeckle ARGS`, SIGKILL it once ``blocks`` blocks are finished; return how
    many were finished when it died."""
    env = {**os.environ, "GEODIFF_PROGRESS": "none"}
    proc = subprocess.Popen(
        [*GEODIFF, "despeckle", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    end = time.monotonic() + timeout
    while finished_blocks(out) < blocks:
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"the run ended before it could be killed: {proc.communicate()}")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return finished_blocks(out)


def _pixels(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


@pytest.mark.parametrize(
    ("size", "options", "total", "kill_at"),
    [(512, LEE, 64, 8), (4096, LEE_4096, 64, 32), (128, DPS, 4, 2)],
    ids=["lee", "lee-4096-killed-at-half", "sar-dps"],
)
def test_sigkill_then_rerun_recomputes_only_the_rest(
    invoke, tmp_path: Path, size: int, options: list[str], total: int, kill_at: int
) -> None:  # noqa: ANN001
    src = write_scene(tmp_path / "in.tif", speckled(size, size))
    ref = tmp_path / "ref" / "out.tif"
    ref.parent.mkdir()
    assert invoke("despeckle", src, ref, *options).exit_code == 0
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "out.tif"
    finished = kill_after([str(src), str(out), *options], out, kill_at)
    assert 0 < finished < total
    assert leftovers(out_dir)  # the killed run's scratch COG and its resume state
    res = invoke("despeckle", src, out, *options, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    recomputed = finished - summary["blocks_resumed"]
    print(f"killed after {finished} of {total} blocks; rerun resumed {summary['blocks_resumed']}")
    assert recomputed <= 0.1 * finished, f"{recomputed} of {finished} finished blocks recomputed"
    assert summary["blocks_computed"] == total - summary["blocks_resumed"]
    assert np.array_equal(_pixels(out), _pixels(ref), equal_nan=True)
    assert sha256(out) == sha256(ref)  # the whole file, tags and overviews included
    assert sorted(p.name for p in out_dir.iterdir()) == ["out.tif"]  # leftovers removed on success


def test_sigkilled_batch_continues_the_interrupted_scene(invoke, tmp_path: Path) -> None:  # noqa: ANN001
    scenes = tmp_path / "in"
    scenes.mkdir()
    for i in range(2):
        write_scene(scenes / f"s{i}.tif", speckled(512, 512, seed=i))
    ref = tmp_path / "ref"
    ref.mkdir()
    for i in range(2):
        assert invoke("despeckle", scenes / f"s{i}.tif", ref / f"s{i}.tif", *LEE).exit_code == 0
    out = tmp_path / "out"
    env = {**os.environ, "GEODIFF_PROGRESS": "none"}
    cmd = [*GEODIFF, "batch", str(scenes / "s0.tif"), str(scenes / "s1.tif"), "--out", str(out), *LEE]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    end = time.monotonic() + 300
    while finished_blocks(out / "s1.tif") < 8:  # scenes run one after the other in-process
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"the batch ended before it could be killed: {proc.communicate()}")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    finished = finished_blocks(out / "s1.tif")
    assert 0 < finished < 64
    res = invoke("batch", scenes / "s0.tif", scenes / "s1.tif", "--out", out, *LEE, "--json")
    assert res.exit_code == 0, res.output
    rec = {r["scene"]: r for r in json.loads(res.stdout)["scenes"]}
    assert rec["s0.tif"]["status"] == "skipped"
    assert rec["s1.tif"]["status"] == "done"
    print(
        f"batch killed after {finished} of 64 blocks of s1; rerun resumed {rec['s1.tif']['blocks_resumed']}"
    )
    assert finished - rec["s1.tif"]["blocks_resumed"] <= 0.1 * finished
    assert rec["s1.tif"]["blocks_computed"] == 64 - rec["s1.tif"]["blocks_resumed"]
    for i in range(2):
        assert sha256(out / f"s{i}.tif") == sha256(ref / f"s{i}.tif")
    assert sorted(p.name for p in out.iterdir()) == ["geodiff-batch.jsonl", "s0.tif", "s1.tif"]


def test_sigterm_during_a_batch_leaves_a_resumable_manifest(invoke, tmp_path: Path) -> None:  # noqa: ANN001
    """SIGTERM stops the scene in flight at its next block (before: the batch waited for it to end),
    records it as interrupted and keeps its blocks; the rerun continues it."""
    src = write_scene(tmp_path / "s0.tif", speckled(512, 512))
    ref = tmp_path / "ref.tif"
    assert invoke("despeckle", src, ref, *LEE).exit_code == 0
    out = tmp_path / "out"
    env = {**os.environ, "GEODIFF_PROGRESS": "none"}
    cmd = [*GEODIFF, "batch", str(src), "--out", str(out), *LEE]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    end = time.monotonic() + 300
    while finished_blocks(out / "s0.tif") < 8:
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"the batch ended before it could be stopped: {proc.communicate()}")
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    finished = finished_blocks(out / "s0.tif")
    assert 0 < finished < 64  # stopped mid-scene, its blocks kept
    last = json.loads((out / "geodiff-batch.jsonl").read_text().splitlines()[-1])
    assert last["scene"] == "s0.tif" and last["status"] == "interrupted"
    assert not (out / "s0.tif").exists()
    res = invoke("batch", src, "--out", out, *LEE, "--json")
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)["scenes"][0]
    assert rec["status"] == "done" and rec["blocks_resumed"] >= 0.9 * finished
    assert sha256(out / "s0.tif") == sha256(ref)
    assert sorted(p.name for p in out.iterdir()) == ["geodiff-batch.jsonl", "s0.tif"]
