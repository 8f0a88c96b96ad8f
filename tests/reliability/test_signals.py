"""SIGTERM / SIGHUP / Ctrl-C unwind a real `geodiff despeckle` and leave nothing behind; the
leftovers of a SIGKILLed run are found and removed by the next run on the same output.

Before the fix SIGTERM killed the process on the spot and left ``.out.tif.<pid>-<hex>.part.tif``
(and, during the COG conversion, the COG and ``.ovr.tmp`` temporaries); a rerun left them there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability.scenes import leftovers, sha256, speckled, write_scene

pytestmark = pytest.mark.slow
GEODIFF = [sys.executable, "-m", "geodiff"]


def _start(src: Path, out: Path) -> subprocess.Popen:
    args = [*GEODIFF, "despeckle", str(src), str(out), "--steps", "50", "--samples", "1", "--tile", "64"]
    env = {**os.environ, "GEODIFF_PROGRESS": "none"}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_scratch(proc: subprocess.Popen, folder: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not leftovers(folder):
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"the run never started writing: {proc.communicate()}")
        time.sleep(0.05)


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return write_scene(tmp_path / "scene.tif", speckled(256, 256))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_mid_run_cleans_up(scene: Path, tmp_path: Path, sig: int, code: int) -> None:
    before = sha256(scene)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = _start(scene, out_dir / "out.tif")
    _wait_for_scratch(proc, out_dir)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "no output was written under the final name" in err.strip().splitlines()[-1]
    assert "Traceback" not in err
    # only the finished blocks may stay, for the next run to continue from (tests/reliability/test_resume.py)
    assert [p.name for p in out_dir.iterdir()] in ([], [".out.tif.resume"])
    assert sha256(scene) == before


def test_leftovers_of_a_killed_run_are_removed_by_the_next(
    invoke, scene: Path, tmp_path: Path, caplog
) -> None:  # noqa: ANN001
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = _start(scene, out_dir / "out.tif")
    _wait_for_scratch(proc, out_dir)
    proc.kill()
    proc.communicate(timeout=60)
    left = leftovers(out_dir)
    assert left  # what SIGKILL leaves: nobody could clean up
    res = invoke("despeckle", scene, out_dir / "out.tif", "--method", "lee")
    assert res.exit_code == 0, res.output
    assert "left by an interrupted run" in caplog.text and left[0] in caplog.text
    assert sorted(p.name for p in out_dir.iterdir()) == ["out.tif"]


@pytest.mark.parametrize("sig", [None, signal.SIGTERM])
def test_dask_scratch_of_local_workers_is_removed(scene: Path, tmp_path: Path, sig: int | None) -> None:
    """`--workers 2` keeps the workers' scratch in a folder of its own and removes it, also after
    SIGTERM (before: dask-scratch-space stayed in the temporary folder)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = {**os.environ, "GEODIFF_PROGRESS": "none", "TMPDIR": str(tmp)}
    args = [*GEODIFF, "despeckle", str(scene), str(out_dir / "out.tif"), "--workers", "2"]
    args += (
        ["--method", "lee", "--tile", "32"]
        if sig is None
        else ["--steps", "50", "--samples", "1", "--tile", "64"]
    )
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if sig is not None:
        _wait_for_scratch(proc, out_dir)
        assert [p.name for p in tmp.iterdir() if p.name.startswith("geodiff-dask-")]  # the workers' scratch
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == (0 if sig is None else 143), err
    assert list(tmp.iterdir()) == []
