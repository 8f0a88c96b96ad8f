"""Before a batch on a cluster, every dask worker must see the output folder as the client does.

A real worker runs in its own mount namespace where a tmpfs hides the output folder (what a worker
on another machine without the shared filesystem sees: an unrelated folder at the same path). Its
probe file never reaches the client, and the batch stops before any scene with the folder, the
worker and the fix in the message. Needs root (mount namespaces); skipped with the reason elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geodiff.apps.batch import run_batch, unseen_output
from geodiff.errors import OutputFolderError, exit_code

pytestmark = pytest.mark.slow
LOCAL = {"threads_per_worker": 1, "processes": True, "host": "127.0.0.1", "dashboard_address": None}


def _dask_worker(address: str) -> list[str]:
    exe = Path(sys.executable).parent / "dask"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "dask"]
    return [
        *base,
        "worker",
        address,
        "--nthreads",
        "1",
        "--no-nanny",
        "--host",
        "127.0.0.1",
        "--no-dashboard",
    ]


@pytest.fixture
def cluster_with_a_blind_worker(tmp_path: Path):  # noqa: ANN201 - (client, output folder, blind pid)
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("hiding a folder from one worker needs root and unshare (mount namespaces)")
    from distributed import Client, LocalCluster

    out = tmp_path / "out"
    out.mkdir()
    with (
        LocalCluster(n_workers=1, **LOCAL) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        hide = 'mount -t tmpfs tmpfs "$0" && exec "$@"'
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, str(out)]
        blind = subprocess.Popen([*cmd, *_dask_worker(cluster.scheduler_address)], stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while len(client.scheduler_info()["workers"]) < 2:
                if blind.poll() is not None:
                    pytest.skip(f"cannot start a worker in a mount namespace: {blind.stderr.read()[-500:]!r}")
                assert time.monotonic() < deadline, "the second worker never joined"
                time.sleep(0.2)
            yield client, out, blind
        finally:
            blind.terminate()
            blind.wait(30)


def test_a_worker_that_does_not_see_the_output_folder_stops_the_batch(
    cluster_with_a_blind_worker, sample_scene: Path
) -> None:  # noqa: ANN001
    client, out, _ = cluster_with_a_blind_worker
    blind = unseen_output(client, out)
    assert len(blind) == 1 and "probe file does not appear here" in next(iter(blind.values()))
    with pytest.raises(OutputFolderError) as err:
        run_batch([sample_scene], out, client=client, method="lee")
    msg = str(err.value)
    assert str(out) in msg and next(iter(blind)) in msg and "filesystem every worker mounts" in msg
    assert exit_code(err.value) == 2
    assert not any(p.name.startswith(".geodiff-probe") for p in out.iterdir())  # probes cleaned
    assert not (out / sample_scene.name).exists()


def test_workers_that_share_the_folder_pass(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, **LOCAL) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        assert unseen_output(client, tmp_path) == {}
        os.chmod(tmp_path, 0o500)  # and one nobody can write into
        try:
            if os.access(tmp_path, os.W_OK):  # root writes anyway
                return
            assert all("cannot write there" in why for why in unseen_output(client, tmp_path).values())
        finally:
            os.chmod(tmp_path, 0o700)
    assert list(tmp_path.iterdir()) == []
