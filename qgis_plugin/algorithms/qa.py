"""Despeckling QA: `geodiff qa ORIGINAL PROCESSED --json` as an HTML report (and JSON) in Processing."""

from __future__ import annotations

import html
import json

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ..runner import run_geodiff, staged_output
from .base import UNITS, GeodiffAlgorithm

HELP = """<p>No-reference quality of a despeckled SAR scene against its original (the PROTOCOL section 2
checks): both are decoded to linear intensity and compared through the ratio image r = original /
despeckled.</p>
<ul><li><b>ratio mean</b>: ideal 1.00 (below: the filter brightened the scene);</li>
<li><b>L var(r)</b>: the ratio's variance times the looks L; ideal about 1 (below 1: speckle left in the
output; above 1: structure removed);</li>
<li><b>bias</b>: mean radiometric change in dB, ideal 0.00;</li>
<li><b>ENL</b> in/out: equivalent number of looks on automatically chosen homogeneous windows (higher out
= smoother).</li></ul>
<p>Looks are estimated from the original when left empty. Writes an HTML report (shown in the Results
Viewer) and, if asked, the JSON of <code>geodiff qa --json</code>. Takes seconds.</p>"""

#: (key, label, ideal value, format) of the report's rows.
ROWS = (
    ("looks", "Looks L of the original", "", ".3f"),
    ("ratio_mean", "Ratio mean", "1.00", ".4f"),
    ("ratio_var_times_looks", "L x ratio variance", "~1 (<1: speckle left, >1: structure removed)", ".4f"),
    ("bias_db", "Bias (dB)", "0.00", "+.4f"),
    ("enl_input", "ENL input", "", ".3f"),
    ("enl_output", "ENL output", "higher = smoother", ".3f"),
    ("n_windows", "Homogeneous windows", "", "d"),
)


def report_html(report: dict) -> str:
    """The QA ``report`` of `geodiff qa --json` as a small HTML page (one figure a row)."""

    def cell(value, spec: str) -> str:  # noqa: ANN001
        if value is None:
            return "n/a"
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            return html.escape(str(value))

    rows = "\n".join(
        f"<tr><td>{html.escape(label)}</td><td>{cell(report.get(key), spec)}</td>"
        f"<td>{html.escape(ideal)}</td></tr>"
        for key, label, ideal, spec in ROWS
    )
    head = html.escape(f"{report.get('processed')} vs {report.get('original')}")
    facts = html.escape(
        f"band {report.get('band')}, sensor {report.get('sensor')}, units {report.get('units')}, "
        f"looks {report.get('looks_source')}"
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        "<title>geodiff despeckling QA</title></head><body>\n"
        f"<h2>Despeckling QA</h2>\n<p>{head}<br>{facts}</p>\n"
        "<table border='1' cellpadding='4' cellspacing='0'>\n"
        "<tr><th>figure</th><th>value</th><th>ideal</th></tr>\n"
        f"{rows}\n</table>\n"
        "<p>No-reference checks of the ratio image (PROTOCOL section 2).</p>\n</body></html>\n"
    )


class QaAlgorithm(GeodiffAlgorithm):
    """PROTOCOL section 2 QA of a despeckled raster: HTML (+ optional JSON) and the figures as outputs."""

    NAME = "qa"
    DISPLAY = "Despeckling QA"
    HELP = HELP
    RASTER_INPUTS = ("ORIGINAL", "PROCESSED")

    def initAlgorithm(self, config=None) -> None:  # noqa: ANN001
        self.add(QgsProcessingParameterRasterLayer("ORIGINAL", "Original SAR scene"))
        self.add(QgsProcessingParameterRasterLayer("PROCESSED", "Despeckled scene"))
        self.add_int("BAND", "Band", 1, minimum=1)
        self.add_enum("UNITS", "Units of the original", UNITS)
        looks = QgsProcessingParameterNumber(
            "LOOKS",
            "Looks L of the original (empty: estimate)",
            QgsProcessingParameterNumber.Double,
            optional=True,
        )
        looks.setMinimum(0.5)
        self.add(looks)
        self.add(QgsProcessingParameterFileDestination("OUTPUT_HTML", "QA report", "HTML files (*.html)"))
        self.add(
            QgsProcessingParameterFileDestination(
                "OUTPUT_JSON",
                "QA figures (JSON)",
                "JSON files (*.json)",
                optional=True,
                createByDefault=False,
            )
        )
        for key, label, _, _ in ROWS[:6]:
            self.addOutput(QgsProcessingOutputNumber(key.upper(), label))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: ANN001, ANN201
        original = self.raster_source(parameters, "ORIGINAL", context)
        processed = self.raster_source(parameters, "PROCESSED", context)
        args = [
            "qa",
            original,
            processed,
            "--json",
            "--band",
            str(self.parameterAsInt(parameters, "BAND", context)),
        ]
        args += self.units_args(parameters, context)
        looks = self.optional_number(parameters, "LOOKS", context)
        if looks is not None:
            args += ["--looks", repr(looks)]
        report = run_geodiff(args, feedback).json()
        results = {key.upper(): report.get(key) for key, _, _, _ in ROWS[:6]}
        out_html = self.parameterAsFileOutput(parameters, "OUTPUT_HTML", context)
        with staged_output(out_html) as staged, open(staged, "w", encoding="utf-8") as f:
            f.write(report_html(report))
        results["OUTPUT_HTML"] = out_html
        out_json = self.parameterAsFileOutput(parameters, "OUTPUT_JSON", context)
        if out_json:
            with staged_output(out_json) as staged, open(staged, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2)
            results["OUTPUT_JSON"] = out_json
        for key, label, ideal, spec in ROWS[1:6]:
            if report.get(key) is not None:
                feedback.pushInfo(
                    f"{label}: {format(report[key], spec)}" + (f" (ideal {ideal})" if ideal else "")
                )
        return results
