"""Despeckle SAR: `geodiff despeckle IN OUT` from the Processing toolbox."""

from __future__ import annotations

import json

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..runner import run_geodiff, staged_output
from .base import DESPECKLE_METHODS, DEVICES, SAR_DPS_ESTIMATORS, SAR_DPS_PROFILES, UNITS, GeodiffAlgorithm

HELP = """<p>Removes speckle from a SAR scene and writes a Cloud-Optimized GeoTIFF with the input's CRS,
transform, nodata, band descriptions and units (intensity in, intensity out; dB in, dB out).</p>
<p><b>SAR-DPS</b> (default) is diffusion posterior sampling with a gamma-speckle likelihood (the review's
SAR-DPS, eq. 22-24): each overlapping tile is restored by a few plug-and-play ADMM iterations with the
diffusion prior as denoiser, then refined by a short come-closer sampling run (Chung et al. 2022) whose
posterior samples are averaged; <i>uncertainty</i> adds one posterior-standard-deviation band per input
band. The <b>profile</b> sets the sampler: fast, balanced (the CPU default) or best (the GPU default);
steps and samples, when given, override it. The <b>estimate</b> (advanced) is the posterior mean (best
PSNR) or the blind-spot estimate, which leaves each pixel's own speckle out of its estimate so that the
ratio image has mean 1 and no radiometric bias (for ratio-based change detection or calibration work),
at about three times the time and a lower PSNR. The <b>classical filters</b> (Lee 1980, refined Lee,
Frost, Gamma-MAP, boxcar) take a window instead and run in seconds.</p>
<p><b>Units</b>: auto reads the file's metadata and values; say intensity, amplitude or dB when it guesses
wrong. <b>Looks</b> (equivalent number of looks L): empty estimates it from the scene; Sentinel-1 GRD
is about 4.4. <b>Sensor profile</b> (advanced) names the product's convention, e.g. s1-grd-db (see
<code>geodiff info</code>).</p>
<p><b>Time</b>: a filter takes seconds; SAR-DPS at the balanced profile on the shipped <code>gray</code>
prior needs about 25 CPU-seconds per 512x512 px (one thread); time grows with steps x samples x
pixels. The PROTOCOL section 2 QA (ratio mean, L var(ratio), bias dB,
ENL in/out) is logged and stored in the output's tags.</p>
<p>The plugin runs the <code>geodiff</code> command line (its path: Settings > Options > Processing >
Providers > geodiff). Cancel stops it and leaves no output.</p>"""


class DespeckleAlgorithm(GeodiffAlgorithm):
    """Despeckle SAR (SAR-DPS or a classical filter) into a COG; outputs OUTPUT, LOOKS and SUMMARY."""

    NAME = "despeckle"
    DISPLAY = "Despeckle SAR"
    HELP = HELP
    RASTER_INPUTS = ("INPUT",)

    def initAlgorithm(self, config=None) -> None:  # noqa: ANN001
        self.add(QgsProcessingParameterRasterLayer("INPUT", "SAR scene"))
        self.add_enum("METHOD", "Method", DESPECKLE_METHODS)
        self.add_enum("UNITS", "Units of the input values", UNITS)
        looks = QgsProcessingParameterNumber(
            "LOOKS", "Looks L (empty: estimate)", QgsProcessingParameterNumber.Double, optional=True
        )
        looks.setMinimum(0.5)
        self.add(looks)
        self.add(QgsProcessingParameterString("PRIOR", "SAR-DPS: diffusion prior (name or path)", "gray"))
        self.add_enum("PROFILE", "SAR-DPS: sampler profile", SAR_DPS_PROFILES)
        self.add_int("STEPS", "SAR-DPS: refinement steps (empty: the profile's)", minimum=1, optional=True)
        self.add_int("SAMPLES", "SAR-DPS: samples averaged (empty: the profile's)", minimum=1, optional=True)
        self.add(
            QgsProcessingParameterBoolean(
                "UNCERTAINTY", "SAR-DPS: add an uncertainty band (posterior std)", False
            )
        )
        self.add_enum("DEVICE", "SAR-DPS: device", DEVICES)
        self.add_enum("ESTIMATOR", "SAR-DPS: estimate", SAR_DPS_ESTIMATORS, advanced=True)
        self.add_int("SEED", "Random seed", 0)
        self.add_int("WINDOW", "Filters: window (odd, px)", 7, minimum=3, advanced=True)
        self.add_int(
            "TILE", "Tile edge in px (empty: 288 for SAR-DPS)", None, minimum=8, optional=True, advanced=True
        )
        self.add_int(
            "OVERLAP", "Tile overlap in px (empty: 32)", None, minimum=0, optional=True, advanced=True
        )
        self.add(
            QgsProcessingParameterString(
                "SENSOR", "Sensor profile (e.g. s1-grd-db; empty: auto)", "", optional=True
            ),
            advanced=True,
        )
        self.add(QgsProcessingParameterRasterDestination("OUTPUT", "Despeckled"))
        self.addOutput(QgsProcessingOutputNumber("LOOKS_USED", "Looks L used"))
        self.addOutput(QgsProcessingOutputString("SUMMARY", "geodiff summary (JSON)"))

    def cli_args(self, parameters, context, in_path: str, out_path: str) -> list[str]:  # noqa: ANN001
        """The `geodiff despeckle` argument list of these parameters (``in_path`` -> ``out_path``)."""
        method = self.choice(parameters, "METHOD", DESPECKLE_METHODS, context)
        sensor = self.parameterAsString(parameters, "SENSOR", context).strip()
        args = [
            "despeckle",
            in_path,
            out_path,
            "--method",
            method,
            "--json",
            *self.units_args(parameters, context),
        ]
        if sensor:
            args += ["--sensor", sensor]
        looks = self.optional_number(parameters, "LOOKS", context)
        if looks is not None:
            args += ["--looks", repr(looks)]
        args += ["--seed", str(self.parameterAsInt(parameters, "SEED", context))]
        if method == "sar-dps":
            args += ["--prior", self.parameterAsString(parameters, "PRIOR", context).strip() or "gray"]
            args += ["--profile", self.choice(parameters, "PROFILE", SAR_DPS_PROFILES, context)]
            for name in ("STEPS", "SAMPLES"):
                value = self.optional_number(parameters, name, context, int)
                if value is not None:
                    args += [f"--{name.lower()}", str(value)]
            args += ["--device", self.choice(parameters, "DEVICE", DEVICES, context)]
            args += ["--estimator", self.choice(parameters, "ESTIMATOR", SAR_DPS_ESTIMATORS, context)]
        else:
            args += ["--window", str(self.parameterAsInt(parameters, "WINDOW", context))]
        if self.parameterAsBoolean(parameters, "UNCERTAINTY", context):
            args.append("--uncertainty")
        for name in ("TILE", "OVERLAP"):
            value = self.optional_number(parameters, name, context, int)
            if value is not None:
                args += [f"--{name.lower()}", str(value)]
        return args

    def processAlgorithm(self, parameters, context, feedback):  # noqa: ANN001, ANN201
        src = self.raster_source(parameters, "INPUT", context)
        out = self.raster_output(parameters, "OUTPUT", context, (src,))
        with staged_output(out) as staged:
            summary = run_geodiff(self.cli_args(parameters, context, src, staged), feedback).json()
        for i, qa in enumerate(summary.get("qa", [])):
            if "error" not in qa:
                feedback.pushInfo(
                    f"QA band {i + 1}: ratio mean {qa['ratio_mean']:.3f}, "
                    f"L var(r) {qa['ratio_var_times_looks']:.2f}, "
                    f"bias {qa['bias_db']:+.2f} dB, ENL {qa['enl_input']:.1f} -> {qa['enl_output']:.1f}"
                )
        summary["output"] = out
        return {
            "OUTPUT": out,
            "LOOKS_USED": summary.get("looks"),
            "SUMMARY": json.dumps(summary, default=str),
        }
