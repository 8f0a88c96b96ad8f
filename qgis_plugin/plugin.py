"""The QGIS plugin object: registers the geodiff Processing provider (also for qgis_process)."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import GeodiffProvider


class GeodiffPlugin:
    """Adds the "geodiff" provider to the Processing registry while the plugin is loaded."""

    def __init__(self, iface=None) -> None:  # noqa: ANN001 - QgisInterface, None in qgis_process
        self.iface = iface
        self.provider: GeodiffProvider | None = None

    def initProcessing(self) -> None:
        """Called by QGIS and by qgis_process (metadata: hasProcessingProvider=yes)."""
        if self.provider is None:
            self.provider = GeodiffProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
