"""scripts/qgis_plugin.sh: the installable zip and the install into a QGIS profile (no QGIS needed)."""

from __future__ import annotations

import configparser
import subprocess
import zipfile
from pathlib import Path

from conftest import REPO

SCRIPT = REPO / "scripts" / "qgis_plugin.sh"


def test_zip_holds_the_plugin_folder(tmp_path: Path) -> None:
    out = tmp_path / "dist" / "geodiff_qgis.zip"
    subprocess.run(["bash", str(SCRIPT), "zip", str(out)], check=True, capture_output=True)
    names = zipfile.ZipFile(out).namelist()
    assert {"geodiff_qgis/__init__.py", "geodiff_qgis/metadata.txt", "geodiff_qgis/icon.svg"} <= set(names)
    assert all(n.startswith("geodiff_qgis/") and "__pycache__" not in n for n in names)
    meta = configparser.ConfigParser()
    meta.read_string(zipfile.ZipFile(out).read("geodiff_qgis/metadata.txt").decode())
    general = meta["general"]
    assert general["qgisMinimumVersion"] == "3.22" and general["hasProcessingProvider"] == "yes"
    assert (REPO / "qgis_plugin" / general["icon"]).exists()
    assert "def classFactory(iface)" in zipfile.ZipFile(out).read("geodiff_qgis/__init__.py").decode()


def test_install_copies_and_enables_once(tmp_path: Path) -> None:
    profile = tmp_path / "profiles" / "default"
    (profile / "QGIS").mkdir(parents=True)
    (profile / "QGIS" / "QGIS3.ini").write_text("[General]\nsomething=1\n\n[PythonPlugins]\nother=true\n")
    for _ in range(2):  # a second install replaces the first
        subprocess.run(["bash", str(SCRIPT), "install", str(profile)], check=True, capture_output=True)
    plugin = profile / "python" / "plugins" / "geodiff_qgis"
    assert (plugin / "metadata.txt").read_bytes() == (REPO / "qgis_plugin" / "metadata.txt").read_bytes()
    assert not list(plugin.rglob("__pycache__"))
    ini = (profile / "QGIS" / "QGIS3.ini").read_text().splitlines()
    assert ini.count("geodiff_qgis=true") == 1 and "something=1" in ini and "other=true" in ini
    assert ini.index("geodiff_qgis=true") > ini.index("[PythonPlugins]")


def test_plugin_only_talks_to_the_cli() -> None:
    """QGIS's Python has no torch: the plugin imports only qgis, processing, the standard library and
    itself, and starts processes only through QgsBlockingProcess (an argument list, never a shell)."""
    import ast
    import sys

    allowed = {"qgis", "processing", *sys.stdlib_module_names}
    for path in (REPO / "qgis_plugin").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"
            assert not roots & {"subprocess", "geodiff", "torch", "tiling", "sensors"}, path.name
        assert "shell=True" not in path.read_text() and "os.system" not in path.read_text(), path.name
