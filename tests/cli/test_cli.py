"""The `geodiff` group's own options: --debug (tracebacks), -v/--verbose (info logs), --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _geodiff(*args: object) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "geodiff", *map(str, args)]
    env = dict(os.environ, GEODIFF_PROGRESS="none")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    quiet = _geodiff("info", tmp_path / "missing.tif")
    loud = _geodiff("--debug", "info", tmp_path / "missing.tif")
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr and len(quiet.stderr.splitlines()) == 1
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "missing.tif" in loud.stderr


def test_verbose_shows_info_logs(sar_crop: Path, tmp_path: Path) -> None:
    args = ("despeckle", sar_crop, tmp_path / "o.tif", "--method", "lee", "--looks", "4", "--overlap", "8")
    quiet = _geodiff(*args)
    loud = _geodiff("-v", *args[:2], tmp_path / "v.tif", *args[3:])
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    needle = "overlap is not used by classical filters"
    assert needle not in quiet.stderr and needle in loud.stderr


def test_help_lists_every_command(invoke) -> None:
    res = invoke("--help")
    for name in ("despeckle", "fuse", "qa", "info", "plan", "quicklook", "models", "train"):
        assert name in res.output
