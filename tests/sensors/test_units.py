"""One units conversion for numpy and torch (sensors.units)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sensors.errors import UnknownUnitsError
from sensors.units import from_intensity, parse_units, to_intensity


@pytest.mark.parametrize("units", ["intensity", "amplitude", "db"])
def test_numpy_and_torch_agree_and_round_trip(units: str) -> None:
    rng = np.random.default_rng(0)
    intensity = rng.gamma(2.0, 0.05, (16, 16))
    stored = from_intensity(intensity, units)
    assert stored.dtype == np.float64
    np.testing.assert_allclose(to_intensity(stored, units), intensity, rtol=1e-12)
    for dtype in (torch.float32, torch.float64):
        t = torch.as_tensor(intensity, dtype=dtype)
        st = from_intensity(t, units)
        assert isinstance(st, torch.Tensor) and st.dtype == dtype and st.device == t.device
        rtol = 1e-5 if dtype == torch.float32 else 1e-12
        np.testing.assert_allclose(st.numpy(), stored, rtol=rtol, atol=1e-6 if units == "db" else 0)
        back = to_intensity(st, units)
        assert back.dtype == dtype
        np.testing.assert_allclose(back.numpy(), to_intensity(stored, units), rtol=rtol)


def test_closed_forms() -> None:
    np.testing.assert_allclose(to_intensity(np.array([-10.0, 0.0, 3.0]), "db"), [0.1, 1.0, 10**0.3])
    np.testing.assert_allclose(to_intensity(np.array([2.0]), "amplitude"), [4.0])
    np.testing.assert_allclose(to_intensity(np.array([1 + 1j]), "complex"), [2.0])
    np.testing.assert_allclose(from_intensity(np.array([-1.0, 4.0]), "amplitude"), [0.0, 2.0])


def test_db_of_zero_is_finite_in_numpy_and_torch() -> None:
    """Zero intensity encodes to about -379 dB, never -inf, so no output holds infinities."""
    z = from_intensity(np.zeros(2), "db")
    zt = from_intensity(torch.zeros(2), "db")
    assert np.all(np.isfinite(z)) and torch.isfinite(zt).all()
    np.testing.assert_allclose(z, zt.numpy(), rtol=1e-6)
    assert z[0] < -370


def test_names_and_errors() -> None:
    assert parse_units("dB") == "db" and parse_units("power") == "intensity"
    with pytest.raises(UnknownUnitsError, match="--units"):
        to_intensity(np.ones(2), "furlongs")
    with pytest.raises(ValueError, match="complex"):
        to_intensity(np.ones(2, complex), "intensity")
    with pytest.raises(UnknownUnitsError):
        parse_units("complex", allow_complex=False)


def test_sensors_does_not_import_torch_at_module_level() -> None:
    import ast
    from pathlib import Path

    import sensors

    for path in Path(sensors.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "torch" for n in names), path.name
