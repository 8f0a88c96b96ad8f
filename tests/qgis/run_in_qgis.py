"""Run geodiff Processing jobs inside real QGIS (QGIS's own Python, not the project's venv).

Usage: ``python3 run_in_qgis.py JOBS.json`` with QGIS's ``python3`` (the one that imports qgis.core),
``QT_QPA_PLATFORM=offscreen``. JOBS.json is a list of jobs; the script prints one JSON list of results
on its last stdout line. Jobs:

Every job has a ``name`` (its result's ``job``).

- ``{"job": "registry"}``: the geodiff provider's algorithms, their parameters and outputs;
- ``{"alg": "geodiff:despeckle", "params": {...}, "executable": PATH|null,
  "cancel_on_progress": false, "load": ["OUTPUT"]}``: ``processing.run``; the result has ``results``,
  ``error`` (the exception text), ``log`` (the feedback's messages), ``progress`` (the values set),
  ``layers`` (validity, CRS, extent, size of each raster output in ``load``) and, with
  ``cancel_on_progress``, ``children`` (pids of the geodiff child when it was cancelled) and
  ``cancel_to_return_s``.

The plugin is imported from the repository's ``qgis_plugin/`` folder under the name ``geodiff_qgis``
(the folder name it gets when installed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def children_of(pid: int) -> list[int]:
    """Pids of the live processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def load_plugin():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location(
        "geodiff_qgis",
        REPO / "qgis_plugin" / "__init__.py",
        submodule_search_locations=[str(REPO / "qgis_plugin")],
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["geodiff_qgis"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    from qgis.core import QgsApplication, QgsProcessingFeedback, QgsRasterLayer
    from qgis.PyQt.QtCore import Qt

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append(str(Path(QgsApplication.pkgDataPath()) / "python" / "plugins"))
    import processing
    from processing.core.Processing import Processing
    from processing.core.ProcessingConfig import ProcessingConfig

    Processing.initialize()
    plugin = load_plugin().classFactory(None)
    plugin.initProcessing()
    from geodiff_qgis.runner import EXECUTABLE_SETTING

    registry = QgsApplication.processingRegistry()
    default_exe = ProcessingConfig.getSetting(EXECUTABLE_SETTING)
    jobs = json.loads(Path(sys.argv[1]).read_text())
    out = []
    for job in jobs:
        if job.get("job", "run") == "registry":
            provider = registry.providerById("geodiff")
            algs = {}
            for alg in provider.algorithms() if provider else []:
                algs[alg.id()] = {
                    "name": alg.displayName(),
                    "group": alg.group(),
                    "help": alg.shortHelpString(),
                    "parameters": {
                        p.name(): {
                            "type": p.type(),
                            "description": p.description(),
                            "options": p.options() if p.type() == "enum" else None,
                            "default": p.defaultValue()
                            if isinstance(p.defaultValue(), (int, float, str))
                            else None,
                        }
                        for p in alg.parameterDefinitions()
                    },
                    "outputs": [o.name() for o in alg.outputDefinitions()],
                }
            out.append(
                {"job": job["name"], "provider": provider.name() if provider else None, "algorithms": algs}
            )
            continue

        # set directly: the options dialog's check would refuse a missing file, but a saved setting can
        # still point to one (e.g. a removed virtual environment)
        ProcessingConfig.settings[EXECUTABLE_SETTING].value = job.get("executable") or default_exe
        feedback = QgsProcessingFeedback()
        log, progress, state = [], [], {}
        feedback.reportError = lambda msg, fatal=False, log=log: log.append(("error", msg))  # noqa: E731
        feedback.pushInfo = lambda msg, log=log: log.append(("info", msg))  # noqa: E731

        def on_progress(value, feedback=feedback, progress=progress, state=state, job=job) -> None:  # noqa: ANN001
            progress.append(value)
            if job.get("cancel_on_progress") and "cancelled_at" not in state:
                state["children"] = children_of(os.getpid())
                state["cancelled_at"] = time.monotonic()
                feedback.cancel()

        feedback.progressChanged.connect(on_progress, Qt.DirectConnection)
        result = {"job": job["name"], "results": None, "error": None}
        try:
            res = processing.run(job["alg"], job["params"], feedback=feedback)
            result["results"] = {
                k: v if isinstance(v, (int, float, str, type(None))) else str(v) for k, v in res.items()
            }
        except Exception as exc:  # noqa: BLE001 - reported to the test
            result["error"] = str(exc)
        if "cancelled_at" in state:
            result["cancel_to_return_s"] = time.monotonic() - state["cancelled_at"]
            result["children"] = state["children"]
            result["children_alive"] = [p for p in state["children"] if Path(f"/proc/{p}").exists()]
        result["log"] = log
        result["progress"] = progress
        layers = {}
        for key in job.get("load", []):
            path = (result["results"] or {}).get(key)
            if path:
                layer = QgsRasterLayer(path, key, "gdal")
                layers[key] = {
                    "valid": layer.isValid(),
                    "crs": layer.crs().toWkt(),
                    "extent": [
                        layer.extent().xMinimum(),
                        layer.extent().yMinimum(),
                        layer.extent().xMaximum(),
                        layer.extent().yMaximum(),
                    ],
                    "size": [layer.width(), layer.height()],
                    "bands": layer.bandCount(),
                }
        result["layers"] = layers
        out.append(result)
    plugin.unload()
    print(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)  # skip QGIS's exit-time teardown (slow and noisy headless)


if __name__ == "__main__":
    main()
