"""Units are never silently wrong: every front agrees with the one detector, on a grid of untagged scenes.

40 shared clean images x looks L in {1, 2, 4, 8} x stored units {intensity, amplitude, dB}: the
clean reflectivity (median 0.05 … 0.3) times Γ(L, 1/L) speckle, stored as I, √I or 10·log10 I in a
float32 GeoTIFF with no units metadata and a neutral name. `geodiff info`, `geodiff qa`,
`geodiff despeckle --method lee`, the numpy API and the xarray accessor must

- agree with each other (the same units, or all of them asking),
- be right whenever they decide,
- and otherwise stop naming ``--units`` (exit 2) or raise AmbiguousUnitsError naming ``units=``.

The counts (decided right / asked / wrong per units and L) are printed (``pytest -s``).
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import write_untagged

import geodiff
from sensors.errors import AmbiguousUnitsError
from sensors.speckle_filters import apply_filter
from sensors.units import from_intensity, to_intensity

UNITS = ("intensity", "amplitude", "db")
LOOKS = (1, 2, 4, 8)
ASKED = "asked"


def _stored(clean: np.ndarray, looks: int, units: str, seed: int) -> np.ndarray:
    speckle = np.random.default_rng(seed).gamma(looks, 1.0 / looks, clean.shape)
    return from_intensity(clean * speckle, units).astype(np.float32)


def _cli_units(res, key: str = "units") -> str:  # noqa: ANN001
    """Units a command used (from its JSON), or ASKED when it stopped (exit 2) naming --units."""
    if res.exit_code == 2:
        assert "--units intensity|amplitude|db" in res.output, res.output
        return ASKED
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)[key]


def _api_units(stored: np.ndarray) -> str:
    """Units the numpy API used: its Lee result matches the filter run in exactly one convention."""
    try:
        out = geodiff.despeckle(stored, method="lee", looks=4.0)
    except AmbiguousUnitsError as exc:
        assert "units=" in str(exc) and "--units" in str(exc)
        return ASKED
    padded = np.pad(stored.astype(np.float64), 3, mode="reflect")
    for units in UNITS:
        ref = from_intensity(apply_filter("lee", to_intensity(padded, units), None, 4.0, 7), units)[
            3:-3, 3:-3
        ]
        if np.allclose(out, ref, rtol=1e-4, atol=1e-4):
            return units
    raise AssertionError("the numpy API's result matches no units convention")


def _accessor_units(stored: np.ndarray) -> str:
    try:
        out = xr.DataArray(stored, dims=("y", "x")).geodiff.despeckle(method="lee", looks=4.0)
    except AmbiguousUnitsError as exc:
        assert "units=" in str(exc)
        return ASKED
    return out.attrs["geodiff_units"]


@pytest.mark.slow
def test_every_front_agrees_and_no_guess_is_wrong(clean_scenes, invoke, tmp_path: Path) -> None:  # noqa: ANN001
    counts: dict[tuple[str, int], collections.Counter] = collections.defaultdict(collections.Counter)
    disagreements, wrong = [], []
    for i, clean in enumerate(clean_scenes):
        for looks in LOOKS:
            for units in UNITS:
                stored = _stored(clean, looks, units, seed=1000 * i + looks)
                path = write_untagged(tmp_path / f"scene_{i:02d}_{looks}_{units[0]}.tif", stored)
                out = tmp_path / f"out_{i:02d}_{looks}_{units[0]}.tif"
                verdicts = {
                    "info": _cli_units(invoke("info", path, "--json")) or ASKED,
                    "qa": _cli_units(invoke("qa", path, path, "--looks", looks, "--json")),
                    "despeckle": _cli_units(
                        invoke("despeckle", path, out, "--method", "lee", "--looks", 4, "--json")
                    ),
                    "numpy": _api_units(stored),
                    "xarray": _accessor_units(stored),
                }
                seen = set(verdicts.values())
                if len(seen) != 1:
                    disagreements.append((path.name, verdicts))
                verdict = verdicts["despeckle"]
                kind = "asked" if verdict == ASKED else "right" if verdict == units else "wrong"
                counts[(units, looks)][kind] += 1
                if any(v not in (ASKED, units) for v in verdicts.values()):
                    wrong.append((path.name, verdicts))
    lines = ["units       L  right asked wrong"]
    for units in UNITS:
        for looks in LOOKS:
            c = counts[(units, looks)]
            lines.append(f"{units:<10} {looks:>2}  {c['right']:>5} {c['asked']:>5} {c['wrong']:>5}")
    total = sum(counts.values(), collections.Counter())
    lines.append(f"{'all':<13}  {total['right']:>5} {total['asked']:>5} {total['wrong']:>5}")
    print("\n" + "\n".join(lines))
    assert not wrong, wrong[:5]
    assert not disagreements, disagreements[:5]
    assert total["right"] + total["asked"] == 40 * len(LOOKS) * len(UNITS)
    # the detector is useful, not only careful: dB always, and most linear scenes, are decided
    assert all(counts[("db", looks)]["right"] == 40 for looks in LOOKS)
    assert total["right"] >= 0.8 * 40 * len(LOOKS) * len(UNITS)


def test_a_round_trip_never_asks(clean_scenes, invoke, tmp_path: Path) -> None:  # noqa: ANN001
    """Units the detector cannot decide, declared once, are recorded in the output's tags: its
    despeckled output is read back without asking."""
    stored = np.sqrt(clean_scenes[0]).astype(np.float32)  # amplitude without speckle: values cannot tell
    path = write_untagged(tmp_path / "scene.tif", stored)
    res = invoke("despeckle", path, tmp_path / "o.tif", "--method", "lee", "--looks", 4)
    assert res.exit_code == 2 and "--units" in res.output
    res = invoke(
        "despeckle", path, tmp_path / "o.tif", "--method", "lee", "--looks", 4, "--units", "amplitude"
    )
    assert res.exit_code == 0, res.output
    info = json.loads(invoke("info", tmp_path / "o.tif", "--json").stdout)
    assert (info["units"], info["units_source"]) == ("amplitude", "metadata")
    res = invoke("qa", path, tmp_path / "o.tif", "--json")  # the output states the units for both
    assert res.exit_code == 0 and json.loads(res.stdout)["units"] == "amplitude", res.output
    again = invoke(
        "despeckle", tmp_path / "o.tif", tmp_path / "o2.tif", "--method", "lee", "--looks", 4, "--json"
    )
    assert again.exit_code == 0 and json.loads(again.stdout)["units"] == "amplitude"


def _untagged_copy(src: Path, dst: Path, transform) -> Path:  # noqa: ANN001
    """Band 1 of ``src`` (dB) as linear amplitude, same grid, no tags/descriptions/unit type."""
    import rasterio

    with rasterio.open(src) as s:
        db = s.read(1).astype(np.float64)
        prof = dict(driver="GTiff", width=s.width, height=s.height, count=1, dtype="float32", crs=s.crs)
        with rasterio.open(dst, "w", transform=s.transform, **prof) as d:
            d.write(transform(db).astype(np.float32)[None])
    return dst


def test_fuse_asks_for_the_sar_units_and_takes_them(fusion_pair, invoke, tmp_path: Path) -> None:  # noqa: ANN001
    opt, sar = fusion_pair
    amp = _untagged_copy(sar, tmp_path / "sar.tif", lambda db: np.sqrt(10 ** (db / 10)))
    res = invoke("fuse", opt, amp, tmp_path / "f.tif", "--method", "average", "--json")
    assert res.exit_code == 2 and "--units intensity|amplitude|db" in res.output, res.output
    res = invoke(
        "fuse", opt, amp, tmp_path / "f.tif", "--method", "average", "--units", "amplitude", "--json"
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["sar_units"] == "amplitude"
    # the same scene declared as intensity is decoded differently: --units is not ignored
    res2 = invoke(
        "fuse", opt, amp, tmp_path / "g.tif", "--method", "average", "--units", "intensity", "--json"
    )
    assert res2.exit_code == 0 and json.loads(res2.stdout)["sar_units"] == "intensity"
    import rasterio

    with rasterio.open(tmp_path / "f.tif") as a, rasterio.open(tmp_path / "g.tif") as b:
        assert not np.allclose(a.read(), b.read())


def test_info_prints_the_guess_the_evidence_and_ambiguous(clean_scenes, invoke, tmp_path: Path) -> None:  # noqa: ANN001
    path = write_untagged(tmp_path / "scene.tif", np.sqrt(clean_scenes[0]).astype(np.float32))
    text = invoke("info", path).stdout
    assert "ambiguous" in text and "--units intensity|amplitude|db" in text
    info = json.loads(invoke("info", path, "--json").stdout)
    assert info["units"] is None and info["units_source"] == "ambiguous" and info["units_evidence"]
    info = json.loads(invoke("info", path, "--units", "amplitude", "--json").stdout)
    assert info["units"] == "amplitude" and "declared" in info["units_evidence"]
    assert info["sensor"] == "sar-amplitude"


def test_arrays_take_units_from_attrs_or_units_and_ask_otherwise(clean_scenes) -> None:  # noqa: ANN001
    amp = np.sqrt(clean_scenes[1]).astype(np.float32)  # no speckle: the values cannot tell
    with pytest.raises(AmbiguousUnitsError, match=r"units="):
        geodiff.despeckle(amp, method="lee", looks=4.0)
    da = xr.DataArray(amp, dims=("y", "x"), attrs={"units": "amplitude"})
    out = da.geodiff.despeckle(method="lee", looks=4.0)
    assert out.attrs["geodiff_units"] == "amplitude"
    again = out.geodiff.despeckle(method="lee", looks=4.0)  # the result carries its units
    assert again.attrs["geodiff_units"] == "amplitude"
    ref = geodiff.despeckle(amp, method="lee", looks=4.0, units="amplitude")
    np.testing.assert_allclose(out.values, ref, rtol=1e-6)
    as_db = geodiff.despeckle(amp, method="lee", looks=4.0, units="db")
    assert not np.allclose(as_db, ref)  # units= changes the convention the filter runs in
    # bands of one array share the first band's units (as the bands of a file do): a smooth second
    # band that could not tell its own units on its own is read as the first band says
    speckled = _stored(clean_scenes[1], 1, "intensity", seed=3)
    smooth = clean_scenes[1].astype(np.float32)
    with pytest.raises(AmbiguousUnitsError):
        geodiff.despeckle(smooth, method="lee", looks=4.0)
    stack = geodiff.despeckle(np.stack([speckled, smooth]), method="lee", looks=4.0)
    alone = geodiff.despeckle(smooth, method="lee", looks=4.0, units="intensity")
    np.testing.assert_allclose(stack[1], alone, rtol=1e-6)


def test_quicklook_reads_db_as_db(clean_scenes, invoke, tmp_path: Path) -> None:  # noqa: ANN001
    """The same scene stored as intensity and as dB gives the same picture (units detected or given)."""
    intensity = _stored(clean_scenes[2], 2, "intensity", seed=5).astype(np.float64)
    lin = write_untagged(tmp_path / "lin.tif", intensity)
    db = write_untagged(tmp_path / "db.tif", from_intensity(intensity, "db"))
    from PIL import Image

    pictures = []
    for path, extra in ((lin, ()), (db, ()), (db, ("--units", "db"))):
        png = tmp_path / f"{path.stem}{len(extra)}.png"
        res = invoke("quicklook", path, path, png, *extra)
        assert res.exit_code == 0, res.output
        pictures.append(np.asarray(Image.open(png)))
    head = 22  # captions
    assert np.abs(pictures[0][head:].astype(int) - pictures[1][head:]).max() <= 1
    np.testing.assert_array_equal(pictures[1], pictures[2])
    res = invoke("quicklook", lin, lin, tmp_path / "x.png", "--units", "db")  # misrouted units show
    assert res.exit_code == 0 and not np.array_equal(np.asarray(Image.open(tmp_path / "x.png")), pictures[0])
