"""What every geodiff Processing algorithm shares: names, icon, help, input checks, CLI options."""

from __future__ import annotations

import os
import re
from pathlib import Path

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsRasterLayer,
)
from qgis.PyQt.QtGui import QIcon

ICON = str(Path(__file__).resolve().parents[1] / "icon.svg")

#: The CLI's choices, in the order the dialogs show them: (value passed to geodiff, label).
DESPECKLE_METHODS = (
    ("sar-dps", "SAR-DPS (diffusion posterior sampling)"),
    ("lee", "Lee filter"),
    ("refined-lee", "Refined Lee filter"),
    ("frost", "Frost filter"),
    ("gamma-map", "Gamma-MAP filter"),
    ("boxcar", "Boxcar (mean) filter"),
)
#: The stored SAR quantity (the CLI's --units; auto: from the metadata, else decisive values).
UNITS = (
    ("auto", "Auto (from the file's metadata, else its values)"),
    ("intensity", "Intensity (linear power, e.g. sigma0 / gamma0)"),
    ("amplitude", "Amplitude (linear, sqrt of intensity)"),
    ("db", "dB (10 log10 intensity)"),
)
DEVICES = (("auto", "Auto (CUDA GPU when present, else CPU)"), ("cpu", "CPU"), ("cuda", "CUDA GPU"))
SAR_DPS_PROFILES = (
    ("auto", "Auto (balanced on the CPU, best on a CUDA GPU)"),
    ("fast", "Fast (no more CPU time than BM3D-log)"),
    ("balanced", "Balanced (the CPU default)"),
    ("best", "Best (the GPU default)"),
)
SAR_DPS_ESTIMATORS = (
    ("posterior-mean", "Posterior mean (best PSNR)"),
    ("blind-spot", "Blind-spot (ratio image mean 1, no bias; slower, lower PSNR, no uncertainty)"),
)
FUSION_METHODS = (
    ("dps", "DPS (diffusion posterior sampling, L1/TV guidance)"),
    ("average", "Average"),
    ("wavelet", "Wavelet"),
    ("pca", "PCA"),
    ("laplacian", "Laplacian pyramid"),
)


class GeodiffAlgorithm(QgsProcessingAlgorithm):
    """Base of the geodiff algorithms: subclasses set NAME, DISPLAY, GROUP, GROUP_ID, HELP and
    RASTER_INPUTS (the raster layer parameters checked before a run)."""

    NAME = ""
    DISPLAY = ""
    GROUP = "SAR"
    GROUP_ID = "sar"
    HELP = ""
    RASTER_INPUTS: tuple[str, ...] = ()

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:
        return self.DISPLAY

    def group(self) -> str:
        return self.GROUP

    def groupId(self) -> str:
        return self.GROUP_ID

    def shortHelpString(self) -> str:
        # the help panel turns every newline into a line break: keep line breaks to the HTML tags
        return re.sub(r"\s*\n\s*", " ", self.HELP).strip()

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def createInstance(self) -> GeodiffAlgorithm:
        return type(self)()

    # ----- parameters -----------------------------------------------------------------------------
    def add_enum(self, name: str, label: str, choices: tuple, default: int = 0, advanced: bool = False):
        param = QgsProcessingParameterEnum(name, label, options=[c[1] for c in choices], defaultValue=default)
        return self.add(param, advanced)

    def add_int(self, name: str, label: str, default=None, minimum=None, optional=False, advanced=False):  # noqa: ANN001
        param = QgsProcessingParameterNumber(
            name, label, QgsProcessingParameterNumber.Integer, defaultValue=default, optional=optional
        )
        if minimum is not None:
            param.setMinimum(minimum)
        return self.add(param, advanced)

    def add(self, param: QgsProcessingParameterDefinition, advanced: bool = False):  # noqa: ANN201
        if advanced:
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(param)
        return param

    def choice(self, parameters, name: str, choices: tuple, context) -> str:  # noqa: ANN001
        """The CLI value of an enum parameter."""
        return choices[self.parameterAsEnum(parameters, name, context)][0]

    def units_args(self, parameters, context) -> list[str]:  # noqa: ANN001
        """``--units U`` of the UNITS parameter; nothing for auto (the CLI's default)."""
        units = self.choice(parameters, "UNITS", UNITS, context)
        return [] if units == "auto" else ["--units", units]

    def optional_number(self, parameters, name: str, context, kind=float):  # noqa: ANN001, ANN201
        """An optional number parameter, None when left empty."""
        value = parameters.get(name)
        if value is None or value == "":
            return None
        return kind(self.parameterAsDouble(parameters, name, context))

    # ----- inputs ---------------------------------------------------------------------------------
    def _raster_problem(self, parameters, name: str, context) -> str | None:  # noqa: ANN001
        value = parameters.get(name)
        layer = self.parameterAsRasterLayer(parameters, name, context)
        shown = value.source() if isinstance(value, QgsRasterLayer) else str(value)
        if layer is None or not layer.isValid():
            return (
                f"{self.parameterDefinition(name).description()}: {shown!r} is not a raster layer GDAL can "
                "open; choose a GeoTIFF (or another GDAL raster) of the SAR scene"
            )
        if layer.providerType() != "gdal":
            return (
                f"{self.parameterDefinition(name).description()}: {layer.name()!r} is a "
                f"{layer.providerType()} layer; geodiff reads files through GDAL: save it as a GeoTIFF first"
            )
        return None

    def checkParameterValues(self, parameters, context):  # noqa: ANN001, ANN201, N802
        for name in self.RASTER_INPUTS:
            if parameters.get(name) is None and self.parameterDefinition(name).flags() & (
                QgsProcessingParameterDefinition.FlagOptional
            ):
                continue
            problem = self._raster_problem(parameters, name, context)
            if problem:
                return False, problem
        return super().checkParameterValues(parameters, context)

    def raster_source(self, parameters, name: str, context) -> str:  # noqa: ANN001
        """The GDAL dataset name of a raster layer parameter (what the CLI opens).

        Raises:
            QgsProcessingException: not a raster GDAL can open (the message names the fix).
        """
        problem = self._raster_problem(parameters, name, context)
        if problem:
            raise QgsProcessingException(problem)
        return self.parameterAsRasterLayer(parameters, name, context).source()

    def raster_output(self, parameters, name: str, context, inputs: tuple[str, ...]) -> str:  # noqa: ANN001
        """The GeoTIFF path of a raster destination parameter, never one of ``inputs``."""
        out = self.parameterAsOutputLayer(parameters, name, context)
        if Path(out).suffix.lower() not in (".tif", ".tiff"):
            raise QgsProcessingException(
                f"{out}: geodiff writes Cloud-Optimized GeoTIFFs; name the output *.tif"
            )
        for src in inputs:
            if os.path.exists(out) and os.path.exists(src) and os.path.samefile(out, src):
                raise QgsProcessingException(f"{out} is also an input; choose another output file")
        return out
