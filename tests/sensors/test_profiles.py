"""Sensor profiles: decode then encode gives back the stored values, for every profile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sensors.profiles import PROFILES, get_profile
from sensors.units import db_to_linear, linear_to_db

# What each profile stores (dtype) and the range of valid stored values to draw from.
STORED: dict[str, tuple[str, float, float]] = {
    "s1-grd-amplitude": ("uint16", 1, 65535),
    "s1-grd-intensity": ("float32", 2.0**-20, 1e3),
    "s1-grd-db": ("float32", -60.0, 30.0),
    "sar-intensity": ("float32", 0.0, 2.0**20),
    "sar-amplitude": ("float64", 0.0, 1e4),
    "sar-db": ("float64", -80.0, 40.0),
    "s2-l2a": ("uint16", 1, 65535),
    "s2-l2a-pre0400": ("uint16", 1, 65535),
    "s2-l1c": ("uint16", 1, 65535),
    "s2-l1c-pre0400": ("int16", 1, 32767),
    "landsat-c2-l2": ("uint16", 1, 65535),
    "optical": ("uint8", 0, 255),
}
COMPLEX = ("s1-slc", "sar-complex")
# Same profile, other stored dtypes (the generic optical gain depends on the dtype).
EXTRA: list[tuple[str, str, float, float]] = [
    ("optical", "uint16", 0, 65535),
    ("optical", "float32", -0.5, 2.0),
    ("s1-grd-amplitude", "float32", 0.5, 4096.0),
    ("sar-db", "float32", -50.0, 20.0),
]
CASES = [(name, *STORED[name]) for name in sorted(STORED)] + EXTRA


def test_every_profile_is_covered() -> None:
    assert set(STORED) | set(COMPLEX) == set(PROFILES)


def _arrays(dtype: str, lo: float, hi: float):  # noqa: ANN202
    dt = np.dtype(dtype)
    elems = (
        st.integers(int(lo), int(hi))
        if dt.kind in "iu"
        else st.floats(lo, hi, width=dt.itemsize * 8, allow_nan=False, allow_infinity=False)
    )
    return hnp.arrays(dt, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12), elements=elems)


@pytest.mark.parametrize(("name", "dtype", "lo", "hi"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_decode_encode_identity(name: str, dtype: str, lo: float, hi: float) -> None:
    profile = PROFILES[name]

    @settings(max_examples=40, deadline=None)
    @given(stored=_arrays(dtype, lo, hi), holes=st.integers(0, 2**31 - 1))
    def check(stored: np.ndarray, holes: int) -> None:
        nodata = 0 if np.dtype(dtype).kind in "iu" else -9999.0
        stored = stored.copy()
        hole = np.random.default_rng(holes).random(stored.shape) < 0.2
        stored[hole] = nodata
        before = stored.copy()
        values, mask = profile.decode(stored, nodata)
        np.testing.assert_array_equal(stored, before)  # input never modified
        assert not mask[hole].any()
        back = profile.encode(values, mask, nodata, dtype=stored.dtype)
        assert back.dtype == stored.dtype
        if stored.dtype.kind in "iu":
            np.testing.assert_array_equal(back[mask], stored[mask])
        else:
            rtol = 2e-6 if stored.dtype == np.float32 else 1e-12
            atol = 1e-4 if profile.units == "db" and stored.dtype == np.float32 else 1e-9
            np.testing.assert_allclose(back[mask], stored[mask], rtol=rtol, atol=atol)
        assert np.all(back[~mask] == nodata)

    check()


@pytest.mark.parametrize("name", COMPLEX)
@settings(max_examples=40, deadline=None)
@given(
    z=hnp.arrays(
        np.complex64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.complex_numbers(max_magnitude=1e3, allow_nan=False, allow_infinity=False, width=64),
    )
)
def test_complex_decodes_to_intensity_and_encodes_intensity(name: str, z: np.ndarray) -> None:
    """SLC cannot round-trip (a despeckled scene has no phase): it decodes to |z|² and encodes
    intensity, which the generic intensity profile then reads back unchanged."""
    profile = PROFILES[name]
    values, mask = profile.decode(z)
    expected = np.abs(z.astype(np.complex128)) ** 2
    np.testing.assert_allclose(values[mask], expected[mask], rtol=1e-5, atol=1e-30)
    assert profile.encoded_units == "intensity"
    out = profile.encode(values, mask, dtype=z.dtype)
    assert out.dtype == np.float32
    again, mask2 = get_profile("sar-intensity").decode(out)
    np.testing.assert_allclose(again[mask], values[mask], rtol=1e-6)


def test_reference_values() -> None:
    """Closed forms of the conventions, not just self-consistency."""
    v, m = get_profile("s2-l2a").decode(np.array([[0, 1000, 11000]], dtype=np.uint16))
    assert list(m[0]) == [False, True, True]
    np.testing.assert_allclose(v[0, 1:], [0.0, 1.0], atol=1e-7)
    v, _ = get_profile("s2-l2a-pre0400").decode(np.array([[5000]], dtype=np.uint16))
    np.testing.assert_allclose(v, 0.5)
    v, _ = get_profile("landsat-c2-l2").decode(np.array([[7273, 43636]], dtype=np.uint16))
    np.testing.assert_allclose(v, [[7273 * 2.75e-5 - 0.2, 43636 * 2.75e-5 - 0.2]], rtol=1e-6)
    v, _ = get_profile("s1-grd-db").decode(np.array([[-10.0, 0.0, 3.0]], dtype=np.float32))
    np.testing.assert_allclose(v, [[0.1, 1.0, 10**0.3]], rtol=1e-6)
    v, _ = get_profile("sar-amplitude").decode(np.array([[3.0]]))
    assert v[0, 0] == 9.0
    np.testing.assert_allclose(linear_to_db(db_to_linear(np.array([-23.5]))), [-23.5])
    assert get_profile("s1-grd-intensity").nominal_looks == 4.4
    assert get_profile("s1-slc").nominal_looks == 1.0


def test_db_declared_linear_is_refused() -> None:
    db = np.random.default_rng(0).normal(-15, 4, (32, 32)).astype(np.float32)
    with pytest.raises(ValueError, match="look like dB"):
        get_profile("sar-intensity").decode(db)


def test_linear_declared_db_is_refused() -> None:
    lin = np.random.default_rng(0).gamma(1.0, 0.05, (64, 64)).astype(np.float32)
    with pytest.raises(ValueError, match="look linear"):
        get_profile("sar-db").check_values(lin)


def test_unknown_profile_lists_choices() -> None:
    with pytest.raises(ValueError, match="s1-grd-db"):
        get_profile("sentinel-7")
    assert get_profile("S1_GRD_SIGMA0").name == "s1-grd-intensity"
