"""The QGIS plugin (qgis_plugin/) in real QGIS: the provider and its algorithms through the Processing
registry, ``processing.run`` and ``qgis_process``, compared with the geodiff CLI's own outputs.

The QGIS tests never import qgis in the project's venv: they run QGIS's ``python3`` (the one that
imports ``qgis.core``, e.g. Debian's /usr/bin/python3 with python3-qgis) on ``run_in_qgis.py`` and
``qgis_process`` headless (``QT_QPA_PLATFORM=offscreen``). Debian's ``/usr/bin/qgis_process`` is a shell
wrapper that adds ``$QGIS_OPTS`` (``--noversioncheck``, which qgis_process 3.22 rejects), so the
binary beside it, ``qgis_process.bin``, is run when it exists.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, crop_geotiff

# Every test here starts QGIS (one QGIS start for all processing.run jobs, ~20 s on 2 cores) or qgis_process.
pytestmark = [pytest.mark.qgis, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
#: The venv's geodiff: the executable the plugin runs in these tests.
GEODIFF = str(Path(sys.executable).parent / "geodiff")
#: SAR-DPS options small enough for a test (tiny prior, 2 steps, 1 sample, 4 tiles on the crop).
DPS_CLI = ["--prior", "tiny", "--steps", "2", "--samples", "1", "--tile", "64", "--overlap", "16"]
DPS_PARAMS = {"METHOD": 0, "PRIOR": "tiny", "STEPS": 2, "SAMPLES": 1, "TILE": 64, "OVERLAP": 16}


def qgis_python() -> str:
    """QGIS's Python: $GEODIFF_QGIS_PYTHON, /usr/bin/python3 or python3 on PATH, the first with qgis.core."""
    candidates = [os.environ.get("GEODIFF_QGIS_PYTHON"), "/usr/bin/python3", shutil.which("python3")]
    for exe in filter(None, candidates):
        if Path(exe).exists():
            probe = subprocess.run([exe, "-c", "import qgis.core"], capture_output=True, env=clean_env())
            if probe.returncode == 0:
                return exe
    pytest.fail("qgis_process is installed but no python3 imports qgis.core: apt-get install python3-qgis")


def qgis_process() -> str:
    """The qgis_process binary (Debian: qgis_process.bin, without the wrapper's extra flag)."""
    wrapper = shutil.which("qgis_process")
    assert wrapper, "qgis_process not on PATH"
    binary = Path(os.path.realpath(wrapper) + ".bin")
    return str(binary) if binary.exists() else wrapper


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the venv's Python settings (QGIS's python3 must not see them)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.pop("GEODIFF_PROGRESS", None)
    return env | extra


@pytest.fixture(scope="session")
def qgis_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Headless QGIS in a fresh home folder (its own profile) with the plugin installed by
    ``scripts/qgis_plugin.sh install`` and GEODIFF_EXECUTABLE set to the venv's geodiff."""
    home = tmp_path_factory.mktemp("qgis_home")
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700)
    profile = home / ".local" / "share" / "QGIS" / "QGIS3" / "profiles" / "default"
    env = clean_env(
        HOME=str(home), QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(runtime), GEODIFF_EXECUTABLE=GEODIFF
    )
    subprocess.run(
        ["bash", str(REPO / "scripts" / "qgis_plugin.sh"), "install", str(profile)], check=True, env=env
    )
    return env


def run_jobs(env: dict[str, str], jobs: list[dict], tmp: Path) -> list[dict]:
    """Run ``jobs`` in QGIS's Python (see run_in_qgis.py); their results in order."""
    spec = tmp / "jobs.json"
    spec.write_text(json.dumps(jobs))
    proc = subprocess.run(
        [qgis_python(), str(HERE / "run_in_qgis.py"), str(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_qgis_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([qgis_process(), *args], capture_output=True, text=True, env=env, timeout=300)


def run_cli(*args: object) -> subprocess.CompletedProcess:
    """The venv's `geodiff` in a subprocess, as the plugin runs it."""
    env = clean_env(GEODIFF_PROGRESS="none")
    return subprocess.run([GEODIFF, *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``in.tif``: a 96x128 crop of the bundled Sentinel-1 VV scene, nodata 0 in a corner."""
    import rasterio

    from geodiff import sample_scene

    folder = tmp_path_factory.mktemp("qgis_work")
    crop_geotiff(sample_scene(), folder / "in.tif", 80, 100, 96, 128)
    with rasterio.open(folder / "in.tif", "r+") as ds:  # a nodata corner: the outputs must keep it
        data = ds.read(1)
        data[:6, :10] = 0.0
        ds.write(data, 1)
        ds.nodata = 0.0
    return folder


@pytest.fixture(scope="module")
def cli_refs(work: Path) -> dict[str, Path]:
    """The CLI's own outputs for the options the QGIS tests use: Lee and SAR-DPS (tiny prior)."""
    refs = {"lee": work / "ref" / "lee.tif", "dps": work / "ref" / "dps.tif"}
    refs["lee"].parent.mkdir()
    for key, extra in (("lee", ["--method", "lee"]), ("dps", DPS_CLI)):
        proc = run_cli("despeckle", work / "in.tif", refs[key], *extra)
        assert proc.returncode == 0, proc.stderr
    return refs


# ----- processing.run jobs: one QGIS start for all of them ---------------------------------------------
ALGORITHMS = {"geodiff:despeckle", "geodiff:fuse", "geodiff:qa", "geodiff:plan", "geodiff:check"}


@pytest.fixture(scope="module")
def jobs(qgis_env: dict[str, str], work: Path, cli_refs: dict[str, Path]) -> dict[str, dict]:
    """Every ``processing.run`` job of this module, run in one QGIS start; results by job name."""
    import geopandas as gpd
    from shapely.geometry import box

    src = str(work / "in.tif")
    for sub in ("qgis", "cancel", "plan"):
        (work / sub).mkdir()
    (work / "notes.txt").write_text("not a raster\n")
    with __import__("rasterio").open(src) as ds:  # an AOI over the scene's upper-left quarter, in EPSG:4326
        b = ds.bounds
        aoi = box(b.left, b.top - (b.top - b.bottom) / 4, b.left + (b.right - b.left) / 4, b.top)
        gpd.GeoDataFrame(geometry=[aoi], crs=ds.crs).to_crs(4326).to_file(work / "aoi.gpkg")
    failing = work / "failing_geodiff"  # a stand-in executable that fails like the CLI does (exit 1)
    failing.write_text(
        "#!/bin/sh\necho 'geodiff: failed: RuntimeError: out of memory (rerun with --debug)' >&2\nexit 1\n"
    )
    failing.chmod(0o755)
    out = work / "qgis"
    todo = [
        {"job": "registry", "name": "registry"},
        {"name": "lee", "alg": "geodiff:despeckle", "load": ["OUTPUT"],
         "params": {"INPUT": src, "METHOD": 1, "UNITS": 1, "OUTPUT": str(out / "lee.tif")}},
        {"name": "dps", "alg": "geodiff:despeckle", "load": ["OUTPUT"],
         "params": {"INPUT": src, **DPS_PARAMS, "OUTPUT": str(out / "dps.tif")}},
        {"name": "cancel", "alg": "geodiff:despeckle", "cancel_on_progress": True,
         "params": {"INPUT": src, **DPS_PARAMS, "OUTPUT": str(work / "cancel" / "dps.tif")}},
        {"name": "not_raster", "alg": "geodiff:despeckle",
         "params": {"INPUT": str(work / "notes.txt"), "METHOD": 1, "OUTPUT": str(out / "x.tif")}},
        {"name": "missing_exe", "alg": "geodiff:despeckle", "executable": str(work / "no" / "geodiff"),
         "params": {"INPUT": src, "METHOD": 1, "OUTPUT": str(out / "y.tif")}},
        {"name": "exit2", "alg": "geodiff:despeckle",
         "params": {"INPUT": src, "METHOD": 0, "PRIOR": "no-such-prior", "OUTPUT": str(out / "z.tif")}},
        {"name": "exit1", "alg": "geodiff:despeckle", "executable": str(failing),
         "params": {"INPUT": src, "METHOD": 1, "OUTPUT": str(out / "w.tif")}},
        {"name": "plan", "alg": "geodiff:plan",
         "params": {"INPUT": src, "TILE": 48, "OVERLAP": 8, "OUTPUT": str(work / "plan" / "plan.gpkg")}},
        {"name": "plan_aoi", "alg": "geodiff:plan",
         "params": {"INPUT": src, "TILE": 48, "OVERLAP": 8, "AOI": str(work / "aoi.gpkg"),
                    "OUTPUT": str(work / "plan" / "plan_aoi.gpkg")}},
        {"name": "qa", "alg": "geodiff:qa",
         "params": {"ORIGINAL": src, "PROCESSED": str(cli_refs["lee"]), "OUTPUT_HTML": str(out / "qa.html"),
                    "OUTPUT_JSON": str(out / "qa.json")}},
        {"name": "check", "alg": "geodiff:check", "params": {}},
    ]  # fmt: skip
    return {r["job"]: r for r in run_jobs(qgis_env, todo, work)}


def assert_same_raster(path: Path, ref: Path, src: Path, nodata_corner: bool = True) -> None:
    """``path`` has the grid, CRS and nodata of ``src`` and exactly the values of ``ref``."""
    import numpy as np
    import rasterio

    with rasterio.open(path) as out, rasterio.open(ref) as r, rasterio.open(src) as s:
        assert (out.crs, out.transform, out.nodata, out.shape) == (s.crs, s.transform, s.nodata, s.shape)
        assert out.dtypes == r.dtypes
        np.testing.assert_array_equal(out.read(), r.read())
        if nodata_corner:
            assert out.nodata is not None
            assert out.read_masks(1)[:6, :10].max() == 0  # the nodata corner stays nodata


def test_provider_lists_every_algorithm_and_parameter(jobs: dict[str, dict]) -> None:
    reg = jobs["registry"]
    assert reg["provider"] == "geodiff"
    algs = reg["algorithms"]
    assert set(algs) == ALGORITHMS
    assert [algs[a]["name"] for a in sorted(ALGORITHMS - {"geodiff:check"})] == [
        "Despeckle SAR", "Fuse optical and SAR", "Tile plan", "Despeckling QA"
    ]  # fmt: skip
    params = {a: set(v["parameters"]) for a, v in algs.items()}
    assert {"INPUT", "METHOD", "UNITS", "LOOKS", "PRIOR", "PROFILE", "STEPS", "SAMPLES", "UNCERTAINTY",
            "DEVICE", "ESTIMATOR", "SEED", "TILE", "OVERLAP",
            "OUTPUT"} <= params["geodiff:despeckle"]  # fmt: skip
    assert {"OPTICAL", "SAR", "METHOD", "DESPECKLE_SAR", "WEIGHTS", "OUTPUT"} <= params["geodiff:fuse"]
    assert {"ORIGINAL", "PROCESSED", "OUTPUT_HTML", "OUTPUT_JSON"} <= params["geodiff:qa"]
    assert {"INPUT", "TILE", "OVERLAP", "AOI", "OUTPUT"} <= params["geodiff:plan"]
    assert algs["geodiff:despeckle"]["parameters"]["OUTPUT"]["type"] == "rasterDestination"
    assert algs["geodiff:plan"]["parameters"]["OUTPUT"]["type"] == "vectorDestination"
    for alg in algs.values():  # a help text: what it does, and what to expect in time
        assert len(alg["help"]) > 200 and ("Time" in alg["help"] or "second" in alg["help"])


def test_enum_choices_are_the_clis() -> None:
    """The plugin's method lists are the CLI's choices (the plugin cannot import geodiff)."""
    from geodiff.apps.despeckle import METHODS
    from geodiff.apps.despeckle.sar_dps import ESTIMATORS
    from geodiff.apps.fuse.methods import FUSION_METHODS

    text = (REPO / "qgis_plugin" / "algorithms" / "base.py").read_text()
    for name in [*METHODS, *FUSION_METHODS, *ESTIMATORS]:
        assert f'("{name}", ' in text, name


@pytest.mark.parametrize("method", ["lee", "dps"])
def test_despeckle_through_processing_run_equals_the_cli(
    jobs: dict[str, dict], work: Path, cli_refs: dict[str, Path], method: str
) -> None:
    job = jobs[method]
    assert job["error"] is None, job["log"]
    out = Path(job["results"]["OUTPUT"])
    assert out == work / "qgis" / f"{method}.tif"
    layer = job["layers"]["OUTPUT"]
    assert layer["valid"] and layer["size"] == [128, 96] and layer["bands"] == 1
    assert_same_raster(out, cli_refs[method], work / "in.tif")
    assert job["progress"] and job["progress"][-1] == 100
    assert json.loads(job["results"]["SUMMARY"])["method"] == ("lee" if method == "lee" else "sar-dps")


def test_cancel_stops_the_child_and_leaves_nothing(jobs: dict[str, dict], work: Path) -> None:
    job = jobs["cancel"]
    assert job["children"], "no geodiff child was running at the first progress report"
    assert job["children_alive"] == []
    assert job["cancel_to_return_s"] < 2.0
    assert "cancelled" in job["error"]
    assert list((work / "cancel").iterdir()) == []  # no output, no staging folder, no temporary file


def test_bad_inputs_give_clear_errors(jobs: dict[str, dict], work: Path) -> None:
    err = jobs["not_raster"]["error"]
    assert "notes.txt" in err and "not a raster layer GDAL can open" in err
    assert any("not a raster layer" in msg for kind, msg in jobs["not_raster"]["log"] if kind == "error")
    err = jobs["missing_exe"]["error"]
    assert "does not exist" in err and "Settings > Options > Processing > Providers > geodiff" in err
    err = jobs["exit2"]["error"]
    assert "bad input (exit code 2)" in err and "no-such-prior" in err
    err = jobs["exit1"]["error"]
    assert "processing failed (exit code 1)" in err and "RuntimeError: out of memory" in err
    assert sorted(p.name for p in (work / "qgis").iterdir() if p.suffix == ".tif") == ["dps.tif", "lee.tif"]


@pytest.mark.parametrize("name, aoi", [("plan", False), ("plan_aoi", True)])
def test_tile_plan_equals_geodiff_plan(jobs: dict[str, dict], work: Path, name: str, aoi: bool) -> None:
    import geopandas as gpd

    job = jobs[name]
    assert job["error"] is None, job["log"]
    ref = work / "plan" / f"ref_{name}.gpkg"
    extra = ["--aoi", work / "aoi.gpkg"] if aoi else []
    proc = run_cli("plan", work / "in.tif", "--tile", 48, "--overlap", 8, "--out", ref, *extra)
    assert proc.returncode == 0, proc.stderr
    got, want = gpd.read_file(job["results"]["OUTPUT"]), gpd.read_file(ref)
    assert got.crs == want.crs and list(got.columns) == list(want.columns)
    assert job["results"]["TILES"] == len(got) == len(want) > 0
    assert got.drop(columns="geometry").equals(want.drop(columns="geometry"))
    assert got.geometry.geom_equals_exact(want.geometry, tolerance=0).all()
    if aoi:
        full = gpd.read_file(jobs["plan"]["results"]["OUTPUT"])
        assert 0 < len(got) < len(full)


def test_qa_writes_html_and_the_clis_json(
    jobs: dict[str, dict], work: Path, cli_refs: dict[str, Path]
) -> None:
    job = jobs["qa"]
    assert job["error"] is None, job["log"]
    proc = run_cli("qa", work / "in.tif", cli_refs["lee"], "--json")
    want = json.loads(proc.stdout)
    got = json.loads((work / "qgis" / "qa.json").read_text())
    assert got == want
    html = (work / "qgis" / "qa.html").read_text()
    assert (
        "Despeckling QA" in html and f"{want['ratio_mean']:.4f}" in html and f"{want['bias_db']:+.4f}" in html
    )
    assert job["results"]["RATIO_MEAN"] == want["ratio_mean"]


def test_check_runs_geodiff_version(jobs: dict[str, dict]) -> None:
    job = jobs["check"]
    assert job["results"]["PATH"] == GEODIFF
    assert job["results"]["VERSION"].startswith("geodiff, version ")


# ----- qgis_process ------------------------------------------------------------------------------------
def test_qgis_process_lists_the_installed_plugin(qgis_env: dict[str, str]) -> None:
    proc = run_qgis_process(qgis_env, "list")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines() if line.strip().startswith("geodiff:")}
    assert listed == ALGORITHMS


@pytest.mark.parametrize("method", ["lee", "dps"])
def test_despeckle_through_qgis_process_equals_the_cli(
    qgis_env: dict[str, str], work: Path, cli_refs: dict[str, Path], method: str
) -> None:
    out = work / "qgis_process" / f"{method}.tif"
    out.parent.mkdir(exist_ok=True)
    params = {"METHOD": 1} if method == "lee" else DPS_PARAMS
    args = [f"{k}={v}" for k, v in {"INPUT": work / "in.tif", **params, "OUTPUT": out}.items()]
    proc = run_qgis_process(qgis_env, "--json", "run", "geodiff:despeckle", "--", *args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["results"]["OUTPUT"] == str(out)
    assert_same_raster(out, cli_refs[method], work / "in.tif")


def test_fuse_through_qgis_process_equals_the_cli(
    qgis_env: dict[str, str], shared_data: Path, tmp_path: Path
) -> None:
    from conftest import FUSION_PAIR

    optical, sar = (
        shared_data / FUSION_PAIR / "s2_B02_B03_B04_B08.tif",
        shared_data / FUSION_PAIR / "s1_VV_VH_db.tif",
    )
    out, ref = tmp_path / "fused.tif", tmp_path / "ref.tif"
    params = {"OPTICAL": optical, "SAR": sar, "METHOD": 1, "UNITS": 3, "OUTPUT": out}
    proc = run_qgis_process(qgis_env, "run", "geodiff:fuse", "--", *(f"{k}={v}" for k, v in params.items()))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    cli = run_cli("fuse", optical, sar, ref, "--method", "average", "--units", "db")
    assert cli.returncode == 0, cli.stderr
    assert_same_raster(out, ref, optical, nodata_corner=False)
