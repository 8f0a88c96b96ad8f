"""The batch job in-process: inputs to scenes, the manifest, skipping and redoing scenes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from geodiff.apps.batch import MANIFEST, Manifest, expand_inputs, params_hash, run_batch
from geodiff.errors import InvalidSettingError

LEE = {"method": "lee", "tile": 128}


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory, sample_scene: Path) -> Path:
    """Three 128x128 crops of the bundled sample."""
    import rasterio
    from rasterio.windows import Window

    folder = tmp_path_factory.mktemp("crops")
    with rasterio.open(sample_scene) as src:
        for i in range(3):
            w = Window(128 * i, 64, 128, 128)
            prof = {**src.profile, "width": 128, "height": 128, "transform": src.window_transform(w)}
            with rasterio.open(folder / f"c{i}.tif", "w", **prof) as dst:
                dst.write(src.read(window=w))
                dst.update_tags(**src.tags())
    return folder


def test_expand_inputs_paths_globs_folders_lists(crops: Path, tmp_path: Path) -> None:
    names = ["c0.tif", "c1.tif", "c2.tif"]
    assert [s.name for s in expand_inputs([str(crops)])] == names
    assert [
        s.name for s in expand_inputs([str(crops / "c*.tif"), str(crops / "c1.tif")])
    ] == names  # deduplicated
    lst = tmp_path / "scenes.txt"
    lst.write_text(f"# archive\n{crops / 'c2.tif'}\n\n{crops / 'c0.tif'}\n")
    assert [s.inputs[0] for s in expand_inputs([str(lst)])] == [str(crops / "c2.tif"), str(crops / "c0.tif")]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"optical,sar\n{crops / 'c0.tif'},{crops / 'c1.tif'}\n")
    (scene,) = expand_inputs([str(pairs)], job="fuse")
    assert scene.inputs == (str(crops / "c0.tif"), str(crops / "c1.tif")) and scene.name == "c0.tif"
    assert expand_inputs([str(crops / "c0.tif")], name="{stem}_lee.tif")[0].name == "c0_lee.tif"


@pytest.mark.parametrize(
    ("inputs", "job", "match"),
    [
        (["nothing*.tif"], "despeckle", "no file matches"),
        ([], "despeckle", "no input scenes"),
        (["a.tif"], "fuse", "not an optical,sar pair"),
        (["a.tif", "b/a.tif"], "despeckle", "would both be written"),
        (["a.tif"], "train", "unknown batch job"),
    ],
)
def test_expand_inputs_rejects(inputs: list[str], job: str, match: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidSettingError, match=match):
        expand_inputs([str(tmp_path / i) for i in inputs], job=job)


def test_params_hash_depends_on_job_and_values_only() -> None:
    assert params_hash("despeckle", {"a": 1, "b": 2}) == params_hash("despeckle", {"b": 2, "a": 1})
    assert params_hash("despeckle", {"a": 1}) != params_hash("despeckle", {"a": 2})
    assert params_hash("despeckle", {"a": 1}) != params_hash("fuse", {"a": 1})


def test_manifest_skips_a_truncated_last_line(tmp_path: Path) -> None:
    m = Manifest(tmp_path)
    m.append({"scene": "a.tif", "status": "done"})
    with open(m.path, "a") as f:
        f.write('{"scene": "b.tif", "sta')  # a killed writer
    assert m.latest() == {"a.tif": {"scene": "a.tif", "status": "done"}}


def test_batch_matches_single_runs_and_resumes(crops: Path, tmp_path: Path) -> None:
    from geodiff.apps.despeckle import despeckle_scene

    out = tmp_path / "out"
    first = run_batch([str(crops)], out, **LEE)
    assert [r["status"] for r in first] == ["done"] * 3
    for r in first:
        ref = tmp_path / f"ref_{r['scene']}"
        despeckle_scene(r["inputs"][0]["path"], ref, progress=False, **LEE)
        assert Path(r["output"]).read_bytes() == ref.read_bytes()
    assert all(len(r["output_sha256"]) == 64 and r["qa"] for r in first)

    again = run_batch([str(crops)], out, **LEE)
    assert [r["status"] for r in again] == ["skipped"] * 3  # nothing recomputed
    threads = run_batch([str(crops)], tmp_path / "threads", scenes_in_flight=3, **LEE)
    assert [r["output_sha256"] for r in threads] == [r["output_sha256"] for r in first]  # in input order
    assert [r["output_sha256"] for r in again] == [r["output_sha256"] for r in first]

    # a changed input (mtime), changed parameters and a lost output are redone; the rest skipped
    st = os.stat(crops / "c0.tif")
    os.utime(crops / "c0.tif", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    (out / "c2.tif").unlink()
    status = {r["scene"]: r["status"] for r in run_batch([str(crops)], out, **LEE)}
    assert status == {"c0.tif": "done", "c1.tif": "skipped", "c2.tif": "done"}
    status = {r["scene"]: r["status"] for r in run_batch([str(crops)], out, **{**LEE, "window": 5})}
    assert status == {"c0.tif": "done", "c1.tif": "done", "c2.tif": "done"}
    lines = (out / MANIFEST).read_text().splitlines()
    assert all(json.loads(x)["scene"] for x in lines)


def test_batch_records_failures_and_goes_on(crops: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "c1.tif").write_bytes(b"someone else's file")
    missing = str(tmp_path / "missing.tif")
    recs = {
        r["scene"]: r for r in run_batch([str(crops / "c0.tif"), str(crops / "c1.tif"), missing], out, **LEE)
    }
    assert recs["c0.tif"]["status"] == "done"
    assert recs["c1.tif"]["status"] == "failed" and "OutputExistsError" in recs["c1.tif"]["error"]
    assert (out / "c1.tif").read_bytes() == b"someone else's file"  # never replaced without overwrite
    assert recs["missing.tif"]["status"] == "failed" and recs["missing.tif"]["exit_code"] == 2
    run_batch([str(crops / "c1.tif")], out, **LEE)  # a rerun does not replace it either
    assert (out / "c1.tif").read_bytes() == b"someone else's file"
    recs = {r["scene"]: r for r in run_batch([str(crops / "c1.tif")], out, overwrite=True, **LEE)}
    assert recs["c1.tif"]["status"] == "done"


def test_batch_rejects_bad_settings_before_any_scene(crops: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nope"):
        run_batch([str(crops)], tmp_path, method="nope")
    with pytest.raises(InvalidSettingError, match="either"):
        run_batch([str(crops)], tmp_path, scheduler="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(InvalidSettingError, match="posterior draws"):  # every scene would refuse it
        run_batch([str(crops)], tmp_path, estimator="blind-spot", uncertainty=True)
    with pytest.raises(InvalidSettingError, match="unknown estimator"):
        run_batch([str(crops)], tmp_path, estimator="blindspot")
    assert not (tmp_path / MANIFEST).exists()


def test_python_api_batch_returns_the_records(crops: Path, tmp_path: Path) -> None:
    import geodiff

    recs = geodiff.batch(crops / "c*.tif", tmp_path, method="lee", tile=128)
    assert [(r["scene"], r["status"]) for r in recs] == [(f"c{i}.tif", "done") for i in range(3)]
    again = geodiff.batch(str(crops), tmp_path, method="lee", tile=128)
    assert [r["status"] for r in again] == ["skipped"] * 3
    assert "batch" in dir(geodiff)
