"""Tile plan: `geodiff plan SCENE --out plan.gpkg [--aoi area.gpkg]` from the Processing toolbox."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from qgis.core import (
    QgsFeature,
    QgsFields,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
    QgsVectorFileWriter,
)

from ..runner import run_geodiff, staged_output
from .base import GeodiffAlgorithm

HELP = """<p>Writes the tile grid geodiff uses for a scene as a polygon layer (GeoPackage, layer
<code>tiles</code>): one footprint per tile in the scene's CRS, with its row, column, pixel offsets,
block and seed. Use it to see how a scene is cut before despeckling or fusing, and how large a
tile/overlap makes a job.</p>
<p><b>Tile</b> and <b>overlap</b> are in pixels (SAR-DPS defaults: 288 / 32). With an <b>area of
interest</b> (polygons, any CRS) only the tiles touching it are kept. Takes seconds.</p>"""


class PlanAlgorithm(GeodiffAlgorithm):
    """Tile footprints of a raster (optionally only those touching an AOI) as a GeoPackage layer."""

    NAME = "plan"
    DISPLAY = "Tile plan"
    GROUP = "Tools"
    GROUP_ID = "tools"
    HELP = HELP
    RASTER_INPUTS = ("INPUT",)

    def initAlgorithm(self, config=None) -> None:  # noqa: ANN001
        self.add(QgsProcessingParameterRasterLayer("INPUT", "Scene"))
        self.add_int("TILE", "Tile edge in px", 256, minimum=8)
        self.add_int("OVERLAP", "Tile overlap in px", 32, minimum=0)
        self.add(
            QgsProcessingParameterFeatureSource(
                "AOI",
                "Area of interest (keep tiles touching it)",
                [QgsProcessing.TypeVectorPolygon],
                optional=True,
            )
        )
        self.add(
            QgsProcessingParameterVectorDestination(
                "OUTPUT", "Tile footprints", QgsProcessing.TypeVectorPolygon
            )
        )
        self.addOutput(QgsProcessingOutputNumber("TILES", "Number of tiles"))

    def _write_aoi(self, source, path: str, context) -> None:  # noqa: ANN001
        """The AOI features (geometry only, selection and filters applied) as a GeoPackage."""
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName = "GPKG"
        writer = QgsVectorFileWriter.create(
            path, QgsFields(), source.wkbType(), source.sourceCrs(), context.transformContext(), options
        )
        if writer.hasError() != QgsVectorFileWriter.NoError:
            raise QgsProcessingException(f"could not write the area of interest: {writer.errorMessage()}")
        for feature in source.getFeatures():
            out = QgsFeature()
            out.setGeometry(feature.geometry())
            writer.addFeature(out)
        del writer

    def processAlgorithm(self, parameters, context, feedback):  # noqa: ANN001, ANN201
        src = self.raster_source(parameters, "INPUT", context)
        out = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        if out.startswith(("ogr:", "memory:", "postgres:")) or Path(out).suffix.lower() != ".gpkg":
            raise QgsProcessingException(
                f"{out}: geodiff writes the tile plan as a GeoPackage; save it to a *.gpkg file"
            )
        tile = self.parameterAsInt(parameters, "TILE", context)
        overlap = self.parameterAsInt(parameters, "OVERLAP", context)
        args = ["plan", src, "--tile", str(tile), "--overlap", str(overlap), "--json"]
        aoi = self.parameterAsSource(parameters, "AOI", context)
        scratch = tempfile.mkdtemp(prefix=".geodiff-aoi-", dir=os.path.dirname(out) or None)
        try:
            if aoi is not None:
                aoi_path = os.path.join(scratch, "aoi.gpkg")
                self._write_aoi(aoi, aoi_path, context)
                args += ["--aoi", aoi_path]
            with staged_output(out) as staged:
                summary = run_geodiff([*args, "--out", staged], feedback).json()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        feedback.pushInfo(f"{summary.get('tiles')} tiles of {tile} px (overlap {overlap})")
        return {"OUTPUT": out, "TILES": summary.get("tiles"), "SUMMARY": json.dumps(summary, default=str)}
