"""`geodiff batch` and `geodiff despeckle --scheduler` on a real dask cluster on loopback.

A module fixture starts `dask scheduler` and two `dask worker` processes (127.0.0.1, one thread
each); outputs of the cluster are compared byte for byte with single in-process `geodiff despeckle`
runs of the same scenes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from geodiff.cli import cli

pytestmark = pytest.mark.slow

TILE = ["--method", "lee", "--tile", "64"]  # 16 blocks per 256x256 scene: several in flight


def _dask_cmd(*args: str) -> list[str]:
    exe = Path(sys.executable).parent / "dask"
    return [str(exe), *args] if exe.exists() else [sys.executable, "-m", "dask", *args]


def _start_worker(scheduler_file: Path, log: Path) -> subprocess.Popen:
    cmd = _dask_cmd(
        "worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1", "--nthreads", "1",
        "--nworkers", "1", "--no-dashboard", "--no-nanny", "--death-timeout", "60",
    )  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("ab"), start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_workers(address: str, n: int) -> None:
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False) as c:
        c.wait_for_workers(n, timeout=60)


class Cluster:
    """A scheduler and its workers, as subprocesses (only the ones this fixture started)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.file = root / "scheduler.json"
        self.log = root / "cluster.log"
        cmd = _dask_cmd(
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(self.file),
        )  # fmt: skip
        self.procs = [
            subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=self.log.open("ab"), start_new_session=True
            )
        ]
        deadline = time.monotonic() + 60
        while not self.file.exists() or not self.file.read_text().strip():
            if time.monotonic() > deadline or self.procs[0].poll() is not None:
                raise RuntimeError(f"dask scheduler did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written in one go, but be safe
        self.address = json.loads(self.file.read_text())["address"]
        self.workers = [self.add_worker(), self.add_worker()]
        _wait_workers(self.address, 2)

    def add_worker(self) -> subprocess.Popen:
        proc = _start_worker(self.file, self.log)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for p in reversed(self.procs):
            _stop(p)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory, sample_scene: Path) -> Path:
    """Four 256x256 crops of the bundled sample and one truncated copy."""
    import rasterio
    from rasterio.windows import Window

    folder = tmp_path_factory.mktemp("scenes")
    with rasterio.open(sample_scene) as src:
        for i, (r, c) in enumerate([(0, 0), (0, 256), (256, 0), (256, 256)]):
            w = Window(c, r, 256, 256)
            prof = {**src.profile, "width": 256, "height": 256, "transform": src.window_transform(w)}
            with rasterio.open(folder / f"s{i}.tif", "w", **prof) as dst:
                dst.write(src.read(window=w))
                dst.update_tags(**src.tags())
                dst.descriptions = src.descriptions
    (folder / "s9_truncated.tif").write_bytes((folder / "s0.tif").read_bytes()[:2000])
    return folder


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory, scenes: Path) -> Path:
    """Single in-process `geodiff despeckle` runs of the good scenes."""
    ref = tmp_path_factory.mktemp("ref")
    for f in sorted(scenes.glob("s[0-3].tif")):
        r = CliRunner().invoke(cli, ["despeckle", str(f), str(ref / f.name), *TILE])
        assert r.exit_code == 0, r.output
    return ref


def _same(out: Path, ref: Path, names: list[str]) -> None:
    for n in names:
        assert (out / n).read_bytes() == (ref / n).read_bytes(), n


def test_batch_on_cluster_records_the_bad_scene_and_resumes(cluster, scenes, references, tmp_path) -> None:
    from distributed import Client, get_task_stream

    inputs = [
        str(scenes / "s0.tif"),
        str(scenes / "s1.tif"),
        str(scenes / "s2.tif"),
        str(scenes / "s9_truncated.tif"),
    ]
    args = ["batch", *inputs, "--out", str(tmp_path), "--scheduler", cluster.address, *TILE]
    with Client(cluster.address, set_as_default=False) as watcher, get_task_stream(client=watcher) as ts:
        r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1, r.output
    assert "1 of 4 scene(s) failed" in r.output
    assert len([t for t in ts.data if str(t["key"]).startswith("geodiff-block")]) >= 3 * 16  # on the cluster
    _same(tmp_path, references, ["s0.tif", "s1.tif", "s2.tif"])
    assert not (tmp_path / "s9_truncated.tif").exists()
    records = [json.loads(line) for line in (tmp_path / "geodiff-batch.jsonl").read_text().splitlines()]
    final = {r["scene"]: r for r in records}
    assert final["s9_truncated.tif"]["status"] == "failed"
    assert "RasterOpenError" in final["s9_truncated.tif"]["error"]
    assert all(final[f"s{i}.tif"]["status"] == "done" for i in range(3))
    mtimes = {n: (tmp_path / n).stat().st_mtime_ns for n in ("s0.tif", "s1.tif", "s2.tif")}

    # rerun: nothing recomputed, the bad scene tried again and recorded again
    with Client(cluster.address, set_as_default=False) as watcher, get_task_stream(client=watcher) as ts:
        r = CliRunner().invoke(cli, [*args, "--json"])
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert report["summary"] == {**report["summary"], "done": 0, "skipped": 3, "failed": 1}
    assert [s["seconds"] for s in report["scenes"] if s["status"] == "skipped"] == [0.0, 0.0, 0.0]
    assert not [t for t in ts.data if str(t["key"]).startswith("geodiff-block")]
    assert {n: (tmp_path / n).stat().st_mtime_ns for n in mtimes} == mtimes


def test_despeckle_reaches_the_cluster_through_the_environment(cluster, scenes, references, tmp_path) -> None:
    from distributed import Client, get_task_stream

    out = tmp_path / "s1.tif"
    env = {"DASK_SCHEDULER_ADDRESS": cluster.address}
    with Client(cluster.address, set_as_default=False) as watcher, get_task_stream(client=watcher) as ts:
        r = CliRunner(env=env).invoke(cli, ["despeckle", str(scenes / "s1.tif"), str(out), *TILE])
    assert r.exit_code == 0, r.output
    assert len([t for t in ts.data if str(t["key"]).startswith("geodiff-block")]) == 16
    assert out.read_bytes() == (references / "s1.tif").read_bytes()


def test_batch_survives_a_killed_worker(cluster, scenes, references, tmp_path) -> None:
    victim = cluster.add_worker()
    _wait_workers(cluster.address, 3)
    inputs = [str(scenes / f"s{i}.tif") for i in range(4)]
    cmd = [sys.executable, "-m", "geodiff", "batch", *inputs, "--out", str(tmp_path)]
    cmd += ["--scheduler", cluster.address, "--method", "lee", "--tile", "32"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = tmp_path / "geodiff-batch.jsonl"
    deadline = time.monotonic() + 60
    while not (manifest.exists() and '"status": "done"' in manifest.read_text()):  # first scene done
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)  # mid-batch, blocks of the next scene in flight
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    refs = tmp_path / "ref"
    refs.mkdir()
    for i in range(4):  # references with the same tile
        r = CliRunner().invoke(
            cli, ["despeckle", inputs[i], str(refs / f"s{i}.tif"), "--method", "lee", "--tile", "32"]
        )
        assert r.exit_code == 0
    _same(tmp_path, refs, [f"s{i}.tif" for i in range(4)])


def test_killed_client_then_rerun_skips_finished_scenes(scenes, references, tmp_path) -> None:
    inputs = [str(scenes / f"s{i}.tif") for i in range(4)]
    cmd = [sys.executable, "-m", "geodiff", "batch", *inputs, "--out", str(tmp_path), *TILE]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = tmp_path / "geodiff-batch.jsonl"
    deadline = time.monotonic() + 60
    while not (manifest.exists() and '"status": "done"' in manifest.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {json.loads(x)["scene"] for x in manifest.read_text().splitlines() if '"done"' in x}
    assert done_before
    r = CliRunner().invoke(cli, ["batch", *inputs, "--out", str(tmp_path), *TILE, "--json"])
    assert r.exit_code == 0, r.output
    status = {s["scene"]: s["status"] for s in json.loads(r.stdout)["scenes"]}
    events = [json.loads(x) for x in r.stderr.splitlines() if x.startswith("{")]  # progress: JSON lines
    assert events[0]["event"] == "start" and events[-1] == {
        **events[-1],
        "event": "scene",
        "done": 4,
        "of": 4,
    }
    assert {n for n, s in status.items() if s == "skipped"} == done_before
    assert {n for n, s in status.items() if s == "done"} == {f"s{i}.tif" for i in range(4)} - done_before
    _same(tmp_path, references, [f"s{i}.tif" for i in range(4)])
    assert not [p for p in tmp_path.iterdir() if p.name not in status and p.name != manifest.name]


def test_bad_arguments_exit_2(scenes, tmp_path) -> None:
    runner = CliRunner()
    r = runner.invoke(
        cli, ["batch", str(scenes / "s0.tif"), "--out", str(tmp_path), "--scheduler", "x", "--workers", "2"]
    )
    assert r.exit_code == 2
    r = runner.invoke(cli, ["batch", str(scenes / "nothing*.tif"), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "no file matches" in r.output
    r = runner.invoke(cli, ["batch", str(scenes / "s0.tif"), "--out", str(tmp_path), "--method", "nope"])
    assert r.exit_code == 2


def test_fuse_batch_from_a_csv_of_pairs_matches_single_runs(fusion_pair, invoke, tmp_path) -> None:
    opt, sar = fusion_pair
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"optical,sar\n{opt.name},{sar.name}\n")  # relative to the list's folder
    r = invoke("batch", pairs, "--job", "fuse", "--out", tmp_path / "fused", "--method", "wavelet", "--json")
    assert r.exit_code == 0, r.output
    (rec,) = json.loads(r.stdout)["scenes"]
    assert rec["status"] == "done" and rec["scene"] == "s2.tif"
    assert invoke("fuse", opt, sar, tmp_path / "single.tif", "--method", "wavelet").exit_code == 0
    assert (tmp_path / "fused" / "s2.tif").read_bytes() == (tmp_path / "single.tif").read_bytes()
    r = invoke(
        "batch", pairs, "--job", "fuse", "--out", tmp_path / "fused", "--method", "wavelet", "--looks", "4"
    )
    assert r.exit_code == 2 and "despeckle option" in r.output
