"""Check the geodiff executable: run `geodiff --version` with the configured path and show the result."""

from __future__ import annotations

from qgis.core import QgsProcessingOutputString, QgsProcessingParameterString

from ..runner import configured_executable, resolve_executable, run_geodiff
from .base import GeodiffAlgorithm

HELP = """<p>Runs <code>geodiff --version</code> with the executable set under Settings > Options >
Processing > Providers > geodiff (empty there: $GEODIFF_EXECUTABLE, else the first
<code>geodiff</code> on PATH) and shows the path and the version it reports. Give another path here to try
it before changing the setting. Takes a second.</p>
<p>Install geodiff into a Python that has torch (e.g. <code>python -m venv ~/geodiff-venv &&
~/geodiff-venv/bin/pip install geodiff</code>) and point the setting at
<code>~/geodiff-venv/bin/geodiff</code>.</p>"""


class CheckAlgorithm(GeodiffAlgorithm):
    """Run `geodiff --version`; outputs EXECUTABLE and VERSION."""

    NAME = "check"
    DISPLAY = "Check the geodiff executable"
    GROUP = "Tools"
    GROUP_ID = "tools"
    HELP = HELP

    def initAlgorithm(self, config=None) -> None:  # noqa: ANN001
        self.add(
            QgsProcessingParameterString(
                "EXECUTABLE", "geodiff executable (empty: the provider setting)", "", optional=True
            )
        )
        self.addOutput(QgsProcessingOutputString("PATH", "Executable"))
        self.addOutput(QgsProcessingOutputString("VERSION", "Version"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: ANN001, ANN201
        given = self.parameterAsString(parameters, "EXECUTABLE", context).strip()
        path = resolve_executable(given or configured_executable())
        version = run_geodiff(["--version"], feedback, executable=path).stdout.strip()
        feedback.pushInfo(f"{path}: {version}")
        return {"PATH": path, "VERSION": version}
