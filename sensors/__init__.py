"""sensors: radiometric conventions of SAR and optical products (no diffusion here).

Arrays and metadata in, never files: ``units`` (names and the one intensity/amplitude/dB conversion,
numpy and torch), ``unit_detection`` (the one units detector: metadata first, decisive values, else
ambiguous), ``detect`` and ``profiles`` (sensor profiles: decode/encode stored values), ``looks``
(ENL estimation), ``quality`` and ``fusion_quality`` (QA metrics), ``speckle_filters`` (Lee, boxcar,
...), ``colour`` (optical colour handling), ``errors`` (exceptions, all ValueError subclasses).
"""
