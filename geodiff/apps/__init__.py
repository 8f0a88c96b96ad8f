"""The jobs: each composes a source, a tile plan, a tile function and a writer.

``despeckle`` (SAR scenes; methods in one :class:`~geodiff.apps.registry.Registry`, the run recorded in
the GEODIFF_DESPECKLE tag), ``fuse`` (optical + SAR; its own method registry and a
:class:`~geodiff.apps.fuse.FusionConfig` recorded in the GEODIFF_FUSION tag), ``qa`` (PROTOCOL §2
quality of a despeckled scene), ``info`` (what a scene holds), ``plan`` (tile footprints),
``quicklook`` (before/after PNG); ``facts`` is what every job asks about a SAR band first (units, looks,
a scene sample). The CLI, the Python API and the xarray accessors are thin fronts over these; errors
are the classes of :mod:`geodiff.errors`.
"""
