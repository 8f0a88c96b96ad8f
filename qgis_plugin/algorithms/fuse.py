"""Fuse optical and SAR: `geodiff fuse OPTICAL SAR OUT` from the Processing toolbox."""

from __future__ import annotations

import json

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..runner import run_geodiff, staged_output
from .base import DESPECKLE_METHODS, DEVICES, FUSION_METHODS, UNITS, GeodiffAlgorithm

HELP = """<p>Fuses an optical scene with a SAR scene on the optical grid: the SAR is warped onto the optical
CRS and pixels when needed, and the output keeps the optical georeferencing, bands and dtype.</p>
<p><b>DPS</b> (default) is diffusion posterior sampling (Chung et al., ICLR 2023) with the L1/TV fusion
guidance of the review's eq. 25-26: ||f - f0||1 + a||f - o||1 + b||f - r||1 + c||D(f - o)||1 +
d||D(f - r)||1, where o is the optical luminance, r the SAR and D the image gradient; <b>weights</b>
gives a,b,c,d, or auto (default): a, b from the scene's PCA shares, c, d per pixel from the local gradient
energy. Sampling starts from a noised Laplacian-pyramid fusion at step <b>t0</b>. The classical
baselines (average, wavelet, PCA, Laplacian pyramid) take no prior and run in seconds.</p>
<p><b>Despeckle the SAR first</b> (default Lee) runs a despeckling method on the SAR before fusing; its
<b>looks</b> are estimated when empty. The SAR may be intensity, amplitude or dB.</p>
<p><b>Time</b>: the baselines take seconds; DPS with the default 5 steps on the shipped gray prior took
about 3 s for a 120x120 px pair on 2 CPU cores (plus a few seconds to start); time grows with steps x
pixels, and a GPU is much faster. Cancel stops geodiff and leaves no output.</p>"""

DESPECKLE_FIRST = (("", "No"), *DESPECKLE_METHODS)


class FuseAlgorithm(GeodiffAlgorithm):
    """Fuse an optical with a SAR raster into a COG on the optical grid."""

    NAME = "fuse"
    DISPLAY = "Fuse optical and SAR"
    GROUP = "Fusion"
    GROUP_ID = "fusion"
    HELP = HELP
    RASTER_INPUTS = ("OPTICAL", "SAR")

    def initAlgorithm(self, config=None) -> None:  # noqa: ANN001
        self.add(QgsProcessingParameterRasterLayer("OPTICAL", "Optical scene"))
        self.add(QgsProcessingParameterRasterLayer("SAR", "SAR scene"))
        self.add_int("SAR_BAND", "SAR band (1 = first, e.g. VV)", 1, minimum=1)
        self.add_enum("UNITS", "Units of the SAR values", UNITS)
        self.add_enum("METHOD", "Method", FUSION_METHODS)
        # Lee by default, as the CLI
        self.add_enum("DESPECKLE_SAR", "Despeckle the SAR first", DESPECKLE_FIRST, default=2)
        looks = QgsProcessingParameterNumber(
            "LOOKS",
            "Looks L of the SAR (empty: estimate)",
            QgsProcessingParameterNumber.Double,
            optional=True,
        )
        looks.setMinimum(0.5)
        self.add(looks)
        self.add(QgsProcessingParameterString("WEIGHTS", "DPS: weights a,b,c,d (auto: per pixel)", "auto"))
        self.add_int("STEPS", "DPS: sampling steps", 5, minimum=1)
        self.add_int("T0", "DPS: start step t0", 200, minimum=0, advanced=True)
        self.add(
            QgsProcessingParameterString("PRIOR", "DPS: diffusion prior (name or path)", "gray"),
            advanced=True,
        )
        self.add_int("TILE", "DPS: tile edge in px", 256, minimum=8, advanced=True)
        self.add_int("OVERLAP", "DPS: tile overlap in px", 32, minimum=0, advanced=True)
        self.add_enum("DEVICE", "DPS: device", DEVICES)
        self.add_int("SEED", "Random seed", 0)
        self.add(QgsProcessingParameterRasterDestination("OUTPUT", "Fused"))
        self.addOutput(QgsProcessingOutputString("SUMMARY", "geodiff summary (JSON)"))

    def cli_args(self, parameters, context, optical: str, sar: str, out: str) -> list[str]:  # noqa: ANN001
        """The `geodiff fuse` argument list of these parameters."""
        weights = self.parameterAsString(parameters, "WEIGHTS", context).replace(" ", "")
        if weights.lower() != "auto" and len(weights.split(",")) != 4:
            raise QgsProcessingException(
                f"weights {weights!r}: give auto or four numbers >= 0 separated by commas, e.g. 1,1,1,1"
            )
        args = [
            "fuse",
            optical,
            sar,
            out,
            "--json",
            "--method",
            self.choice(parameters, "METHOD", FUSION_METHODS, context),
        ]
        args += [
            "--weights",
            weights,
            "--sar-band",
            str(self.parameterAsInt(parameters, "SAR_BAND", context)),
        ]
        for name in ("STEPS", "T0", "TILE", "OVERLAP", "SEED"):
            args += [f"--{name.lower()}", str(self.parameterAsInt(parameters, name, context))]
        args += ["--prior", self.parameterAsString(parameters, "PRIOR", context).strip() or "gray"]
        args += ["--device", self.choice(parameters, "DEVICE", DEVICES, context)]
        args += self.units_args(parameters, context)
        first = self.choice(parameters, "DESPECKLE_SAR", DESPECKLE_FIRST, context)
        args += ["--despeckle-sar", first or "none"]
        looks = self.optional_number(parameters, "LOOKS", context)
        if looks is not None:
            args += ["--looks", repr(looks)]
        return args

    def processAlgorithm(self, parameters, context, feedback):  # noqa: ANN001, ANN201
        optical = self.raster_source(parameters, "OPTICAL", context)
        sar = self.raster_source(parameters, "SAR", context)
        out = self.raster_output(parameters, "OUTPUT", context, (optical, sar))
        with staged_output(out) as staged:
            summary = run_geodiff(self.cli_args(parameters, context, optical, sar, staged), feedback).json()
        summary["out"] = out
        return {"OUTPUT": out, "SUMMARY": json.dumps(summary, default=str)}
