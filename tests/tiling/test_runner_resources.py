"""Block tasks ask for a GPU resource on CUDA (dask resource annotation): on a real process-based
LocalCluster with one worker offering GPU=1 and one offering nothing, every block runs on the first."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geodiff.apps.despeckle.methods import _classical_block
from tiling.errors import ClusterResourceError
from tiling.plan import TileSpec
from tiling.runner import RunOptions, block_resources, run_raster

SPEC = TileSpec(tile=32, overlap=0, halo=2, block_tiles=1)  # 150 x 131 px: 25 blocks
LEE = functools.partial(_classical_block, name="lee", looks=2.0, window=5, units="intensity")


class OnDevice:
    device = "cuda:1"


def test_block_resources_follow_the_device_the_options_and_the_environment(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("GEODIFF_DASK_RESOURCES", raising=False)
    assert block_resources(RunOptions()) is None
    assert block_resources(RunOptions(), [LEE]) is None
    assert block_resources(RunOptions(device="cuda")) == {"GPU": 1}
    assert block_resources(RunOptions(), [OnDevice()]) == {"GPU": 1}  # a sar-dps function's device
    assert block_resources(RunOptions(resources={"GPU": 2}), [OnDevice()]) == {"GPU": 2}
    assert block_resources(RunOptions(resources={}), [OnDevice()]) is None  # asked for none
    monkeypatch.setenv("GEODIFF_DASK_RESOURCES", "GPU=1, MEMORY=4e9")
    assert block_resources(RunOptions()) == {"GPU": 1.0, "MEMORY": 4e9}
    monkeypatch.setenv("GEODIFF_DASK_RESOURCES", "GPU")
    with pytest.raises(ClusterResourceError, match="NAME=AMOUNT"):
        block_resources(RunOptions())


@pytest.fixture(scope="module")
def mixed_cluster():  # noqa: ANN201 - (client, address of the GPU worker)
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
        resources={"GPU": 1},
    ) as cluster, Client(cluster, set_as_default=False) as client:  # fmt: skip
        plain = copy.deepcopy(cluster.new_spec)
        plain["options"].pop("resources", None)
        cluster.worker_spec["no-gpu"] = plain
        cluster.sync(cluster._correct_state)
        client.wait_for_workers(2, timeout=60)
        info = client.scheduler_info()["workers"]
        gpu = [w for w, i in info.items() if i.get("resources", {}).get("GPU")]
        assert len(gpu) == 1 and len(info) == 2
        yield client, gpu[0]


@pytest.mark.slow
def test_blocks_run_only_on_workers_with_the_gpu(
    mixed_cluster, nodata_scene: Path, tmp_path: Path, monkeypatch
) -> None:  # noqa: ANN001
    from distributed import get_task_stream

    client, gpu = mixed_cluster
    ref = run_raster(nodata_scene, tmp_path / "ref.tif", LEE, SPEC, kind="array")
    monkeypatch.setenv("GEODIFF_DASK_RESOURCES", "GPU=1")  # forced: CUDA asks for it by itself
    with get_task_stream(client=client) as ts:
        run_raster(
            nodata_scene, tmp_path / "out.tif", LEE, SPEC, kind="array", options=RunOptions(client=client)
        )
    ran = [t["worker"] for t in ts.data if str(t["key"]).startswith("geodiff-block")]
    assert len(ran) == ref["blocks"] == 25
    assert set(ran) == {gpu}
    with rasterio.open(tmp_path / "out.tif") as a, rasterio.open(tmp_path / "ref.tif") as b:
        assert np.array_equal(a.read(), b.read(), equal_nan=True)


@pytest.mark.slow
def test_resources_no_worker_offers_are_refused(mixed_cluster, nodata_scene: Path, tmp_path: Path) -> None:  # noqa: ANN001
    client, _ = mixed_cluster
    opts = RunOptions(client=client, resources={"TPU": 1})
    with pytest.raises(ClusterResourceError, match="none of the cluster's 2 worker"):
        run_raster(nodata_scene, tmp_path / "out.tif", LEE, SPEC, kind="array", options=opts)
    assert list(tmp_path.iterdir()) == []
