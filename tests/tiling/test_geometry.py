"""Named pixel windows and reflect padding."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.windows import Window

from tiling.geometry import PixelWindow, reflect_index, reflect_window


def test_pixel_window_is_rows_first_and_converts_to_rasterio_column_first() -> None:
    win = PixelWindow(row=10, col=20, height=3, width=5)
    rw = win.to_rasterio()
    assert (rw.row_off, rw.col_off, rw.height, rw.width) == (10, 20, 3, 5)
    assert rw == Window(col_off=20, row_off=10, width=5, height=3)
    a = np.arange(40 * 30).reshape(1, 40, 30)
    assert win.crop(a).shape == (1, 3, 5) and win.crop(a)[0, 0, 0] == a[0, 10, 20]
    assert (win.row_stop, win.col_stop, win.shape) == (13, 25, (3, 5))
    with pytest.raises(TypeError):
        Window(*win)  # not a tuple: it cannot be unpacked into rasterio's (col, row) order


def test_grow_relative_and_inside() -> None:
    core = PixelWindow(8, 4, 10, 6)
    read = core.grow(2)
    assert read == PixelWindow(6, 2, 14, 10)
    assert core.relative_to(read) == PixelWindow(2, 2, 10, 6)
    assert core.inside(18, 10) and not core.inside(17, 10) and not read.grow(3).inside(100, 100)
    with pytest.raises(ValueError, match=">= 0"):
        PixelWindow(0, 0, -1, 3)
    with pytest.raises(ValueError, match="integer"):
        PixelWindow(0.5, 0, 1, 3)  # type: ignore[arg-type]


def test_reflect_index_matches_numpy_pad() -> None:
    for n in (1, 2, 3, 7):
        a = np.arange(n)
        for pad in (0, 1, 5, 17):
            ref = np.pad(a, pad, mode="reflect") if n > 1 else np.zeros(n + 2 * pad, int)
            assert np.array_equal(reflect_index(np.arange(-pad, n + pad), n), ref)


@pytest.mark.parametrize(
    "window", [PixelWindow(-3, -2, 10, 12), PixelWindow(4, 5, 9, 9), PixelWindow(2, 1, 3, 4)]
)
def test_reflect_window_reads_only_the_bounds_and_matches_numpy_pad(window: PixelWindow) -> None:
    img = np.random.default_rng(0).random((2, 11, 13))
    plan = reflect_window(window, 11, 13)
    assert plan.bounds.inside(11, 13)
    got = plan.take(plan.bounds.crop(img))
    padded = np.pad(img, ((0, 0), (20, 20), (20, 20)), mode="reflect")
    assert np.array_equal(got, window.relative_to(PixelWindow(-20, -20, 0, 0)).crop(padded))
    assert plan.identity == window.inside(11, 13)
