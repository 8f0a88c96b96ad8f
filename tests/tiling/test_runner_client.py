"""How a run chooses its dask client: argument, DASK_SCHEDULER_ADDRESS, dask config, workers, none."""

from __future__ import annotations

import dask
import distributed  # noqa: F401 - its config defaults must exist before dask.config.set restores them
import pytest

from tiling.runner import dask_client, scheduler_address


@pytest.fixture
def no_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)


def test_scheduler_address_follows_dask_conventions(no_scheduler, monkeypatch: pytest.MonkeyPatch) -> None:
    assert scheduler_address() is None
    with dask.config.set({"scheduler-address": "tcp://10.0.0.2:8786"}):
        assert scheduler_address() == "tcp://10.0.0.2:8786"
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.1:8786")
        assert scheduler_address() == "tcp://10.0.0.1:8786"  # the environment before the config
        assert scheduler_address("tcp://127.0.0.1:1") == "tcp://127.0.0.1:1"  # the argument first


def test_in_process_without_scheduler_or_workers(no_scheduler) -> None:
    with dask_client() as c:
        assert c is None
    with dask_client(workers=1) as c:
        assert c is None
    sentinel = object()
    with dask_client(sentinel, workers=4, scheduler="tcp://127.0.0.1:1") as c:
        assert c is sentinel  # a given client wins and is not closed


def test_unreachable_scheduler_fails_with_oserror(no_scheduler) -> None:
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(OSError, match="no dask scheduler answers"),
    ):
        with dask_client(scheduler="tcp://127.0.0.1:9"):
            pass
