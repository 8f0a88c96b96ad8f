"""Screenshot of the geodiff "Despeckle SAR" dialog in the real QGIS desktop (used for docs/).

Run by ``scripts/qgis_plugin.sh screenshot OUT.png`` as ``qgis --code`` under Xvfb: it adds the sample
scene to the project, opens the Processing dialog of geodiff:despeckle on it, saves the dialog as
``$SHOT_OUT`` and quits.
"""

import os

import processing
from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer
from qgis.utils import iface

layer = QgsRasterLayer(os.environ["SHOT_SCENE"], "sample_s1_vv_gamma0", "gdal")
QgsProject.instance().addMapLayer(layer)
dialog = processing.createAlgorithmDialog("geodiff:despeckle", {"INPUT": layer.id()})
dialog.resize(980, 800)
dialog.show()


def grab() -> None:
    dialog.grab().save(os.environ["SHOT_OUT"])
    os._exit(0)


QTimer.singleShot(5000, grab)
iface  # noqa: B018 - the desktop interface must exist (this runs inside QGIS, not qgis_process)
