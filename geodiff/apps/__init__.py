"""The jobs: each composes a source, a tile plan, a tile function and a writer.

``despeckle`` (SAR scenes), ``fuse`` (optical + SAR), ``qa`` (PROTOCOL §2 quality of a despeckled
scene), ``info`` (what a scene holds), ``plan`` (tile footprints); ``facts`` is what every job asks
about a SAR band first (units, looks, a scene sample). The CLI, the Python API and the xarray
accessors are thin fronts over these.
"""
