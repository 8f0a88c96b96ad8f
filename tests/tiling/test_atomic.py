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
