"""geodiff for QGIS: a Processing provider that runs the `geodiff` command line.

Installed as the plugin folder ``geodiff_qgis`` (``scripts/qgis_plugin.sh install PROFILE``); QGIS
calls :func:`classFactory`.
"""


def classFactory(iface):  # noqa: ANN001, ANN201, N802 - QGIS's plugin entry point
    """The plugin object QGIS loads."""
    from .plugin import GeodiffPlugin

    return GeodiffPlugin(iface)
