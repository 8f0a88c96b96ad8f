"""The Processing provider "geodiff" and its setting (the path of the `geodiff` executable)."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import ALGORITHMS
from .algorithms.base import ICON
from .runner import EXECUTABLE_SETTING, default_executable


class GeodiffProvider(QgsProcessingProvider):
    """Provider id "geodiff": Despeckle SAR, Fuse optical and SAR, Despeckling QA, Tile plan and a
    check of the executable. Outputs are GeoTIFF (rasters) and GeoPackage (tile plans)."""

    def id(self) -> str:
        return "geodiff"

    def name(self) -> str:
        return "geodiff"

    def longName(self) -> str:
        return "geodiff: SAR despeckling and optical-SAR fusion by diffusion posterior sampling"

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def load(self) -> bool:
        """Register the executable setting (Settings > Options > Processing > Providers > geodiff)."""
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting
        except ImportError:  # no Processing plugin: the setting falls back to $GEODIFF_EXECUTABLE / PATH
            self.refreshAlgorithms()
            return True
        ProcessingConfig.settingIcons[self.name()] = self.icon()
        ProcessingConfig.addSetting(
            Setting(
                self.name(),
                EXECUTABLE_SETTING,
                "geodiff executable (empty: $GEODIFF_EXECUTABLE or geodiff on PATH)",
                default_executable(),
                valuetype=Setting.FILE,
            )
        )
        ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        try:
            from processing.core.ProcessingConfig import ProcessingConfig

            ProcessingConfig.removeSetting(EXECUTABLE_SETTING)
        except (ImportError, KeyError):
            pass

    def loadAlgorithms(self) -> None:
        for algorithm in ALGORITHMS:
            self.addAlgorithm(algorithm())

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif"]

    def supportedOutputVectorLayerExtensions(self) -> list[str]:
        return ["gpkg"]

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:  # noqa: N803
        return "gpkg"

    def defaultRasterFileExtension(self) -> str:
        return "tif"
