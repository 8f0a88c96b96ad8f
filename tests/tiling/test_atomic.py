"""All-or-nothing outputs: the final name appears complete or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiling.atomic import atomic_path, scratch_path


def test_success_renames_into_place_and_keeps_the_suffix(tmp_path: Path) -> None:
    final = tmp_path / "plan.gpkg"
    with atomic_path(final) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".gpkg" and tmp.name.startswith(".plan.gpkg.")
        tmp.write_bytes(b"complete")
        (tmp.parent / (tmp.name + ".aux.xml")).write_text("<PAMDataset/>")  # a GDAL side-car
        assert not final.exists()
    assert final.read_bytes() == b"complete"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.gpkg"]  # no scratch or side-car left


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failure_leaves_the_old_file_and_no_scratch(tmp_path: Path, error: BaseException) -> None:
    final = tmp_path / "out.png"
    final.write_bytes(b"old")
    with pytest.raises(type(error)):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half")
            raise error
    assert final.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_a_writer_that_wrote_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="produced no file"):
        with atomic_path(tmp_path / "x.tif"):
            pass
    assert list(tmp_path.iterdir()) == []
    assert scratch_path(tmp_path / "a[1].tif") != scratch_path(tmp_path / "a[1].tif")  # unique names


def test_verify_runs_before_the_rename_and_a_failure_leaves_nothing(tmp_path: Path) -> None:
    def broken(path: Path) -> None:
        raise OSError(f"{path}: unreadable")

    with pytest.raises(OSError, match="unreadable"):
        with atomic_path(tmp_path / "x.tif", verify=broken) as tmp:
            tmp.write_bytes(b"half")
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_a_dead_process_are_removed_live_ones_kept(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    import os
    import subprocess
    import sys

    from tiling.atomic import remove_leftovers

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)  # a process that has exited
    names = [
        f".out.tif.{pid}-0123abcd.part.tif",
        f".out.tif.{pid}-0123abcd.part.tif.ovr.tmp",
        f".out.tif.{pid}-89abcdef.part.tif.aux.xml",
    ]
    keep = [f".out.tif.{os.getpid()}-0123abcd.part.tif", f".other.tif.{pid}-0123abcd.part.tif", "out.tif"]
    for n in names + keep:
        (tmp_path / n).write_bytes(b"x")
    removed = remove_leftovers(tmp_path / "out.tif")
    assert sorted(p.name for p in removed) == sorted(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
    assert "left by an interrupted run" in caplog.text


def test_write_errors_are_named(tmp_path: Path) -> None:
    import errno

    from tiling.atomic import write_error
    from tiling.errors import OutputWriteError, RasterReadError

    full = write_error(
        OSError(errno.ENOSPC, "No space left on device"), tmp_path, needed=130 * 2**20, free_before=8 * 2**20
    )
    assert isinstance(full, OutputWriteError) and full.errno == errno.ENOSPC
    assert str(full).startswith(f"no space left on {tmp_path}: needs about 130 MB, 8 MB free;")
    eio = write_error(OSError(errno.EIO, "Input/output error"), tmp_path)
    assert isinstance(eio, OutputWriteError) and "Input/output error" in str(eio) and eio.errno == errno.EIO
    assert write_error(ValueError("a bug"), tmp_path) is None
    assert write_error(RasterReadError("input block unreadable"), tmp_path) is None
    assert write_error(KeyboardInterrupt(), tmp_path) is None
