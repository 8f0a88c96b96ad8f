"""The despeckling methods, all built through one call: :func:`build`.

A classical filter is an *array* method: a neighbourhood function run on each block with a halo
(the block is then exact). A diffusion sampler is a *tiles* method: a tile-batch function that gets
the tiles' seeds, validity masks and the per-step blending hook from the tiling runner. Both take
stored values in the scene's ``units`` and give them back in the same units; nodata stays nodata.

Every method is made the same way::

    fn = build("sar-dps", looks=4.4, units="db", sample=(intensity, valid), steps=5)

``sample`` is a (central) read of the scene in linear intensity with its validity mask: a tiles
method fixes its scene-wide scale from it, so one scene gets one scale whatever the tiling.
"""

from __future__ import annotations

import difflib
import functools
import logging
import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from geodiff.apps.registry import Registry
from geodiff.errors import InvalidSettingError, UncertaintyNotSupportedError
from sensors.speckle_filters import FILTERS, apply_filter, filter_radius
from sensors.units import from_intensity, to_intensity

log = logging.getLogger(__name__)

#: Window of the classical filters (odd, pixels) where the caller does not choose one.
DEFAULT_WINDOW = 7
#: Above this many looks the speckle is negligible: a filter returns (almost) its input.
LOOKS_WARN = 1000.0
#: Keywords every method takes besides its own options (for "did you mean" suggestions).
_COMMON = ("looks", "units", "window", "sensor", "uncertainty", "seed", "tile", "overlap", "overwrite")


@dataclass(frozen=True)
class Method:
    """A despeckling method of the registry (see :func:`build` for the functions' shapes).

    ``kind``: "array" (a block + halo numpy function, ``fn(block, valid) -> block``) or "tiles" (a
    tile-batch torch function, ``fn(tiles, ctx) -> tiles``, see :class:`tiling.runner.TileContext`).
    ``make(looks=, window=, units=, sample=, **options)`` returns that (picklable) function;
    ``halo(window)`` the context in pixels a block needs around it.
    """

    name: str
    kind: str
    make: Callable[..., Callable]
    halo: Callable[[int], int]
    description: str = ""
    samples: bool = False  # draws several posterior samples (an uncertainty band means something)


METHODS: Registry[Method] = Registry("despeckling method", ("array", "tiles"))
#: Add (or replace) a method; InvalidSettingError for a kind other than "array" / "tiles".
register = METHODS.register
#: The method of a name; UnknownMethodError (a ValueError, listing the choices) otherwise.
get = METHODS.method


def check_looks(looks: Any) -> float | None:
    """``looks`` as a float (None stays None: estimate it), after refusing what cannot be L.

    Warns (UserWarning) above :data:`LOOKS_WARN`: with that many looks the result equals the input.

    Raises:
        InvalidSettingError (ValueError): not a real number (e.g. the string "4"), not finite, or <= 0.
    """
    if looks is None:
        return None
    if isinstance(looks, bool) or not isinstance(looks, numbers.Real):
        raise InvalidSettingError(
            f"looks={looks!r} must be a number > 0, not {type(looks).__name__} (e.g. looks=4.4, --looks 4.4)"
        )
    value = float(looks)
    if not math.isfinite(value) or value <= 0:
        raise InvalidSettingError(f"looks={looks} must be a finite number > 0 (e.g. looks=4.4, --looks 4.4)")
    if value > LOOKS_WARN:
        warnings.warn(
            f"looks={value:g} > {LOOKS_WARN:g}: so many looks mean no speckle; the result will equal the "
            "input (pass the scene's real looks, or omit them to estimate them)",
            UserWarning,
            stacklevel=2,
        )
    return value


def check_count(name: str, value: Any, low: int) -> int:
    """``value`` as an int after refusing a non-integer or one below ``low`` (tile, workers, steps...).

    Raises:
        InvalidSettingError (ValueError): e.g. "--tile 0 must be an integer >= 1".
    """
    flag = "--batch" if name == "max_batch" else f"--{name.replace('_', '-')}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InvalidSettingError(
            f"{flag} {value!r} must be an integer >= {low} ({name}={low} or more in Python)"
        )
    return int(value)


def method_options(name: str) -> tuple[str, ...] | None:
    """The option keywords method ``name`` accepts besides looks/units/window (None: not checked)."""
    m = get(name)
    if m.kind == "array":
        return ("uncertainty",)
    if name == "sar-dps":
        import dataclasses

        from geodiff.apps.despeckle.sar_dps import SarDpsTiles

        return tuple(
            f.name for f in dataclasses.fields(SarDpsTiles) if f.name not in ("looks", "units", "scale")
        )
    return None


def check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse option keywords method ``name`` does not know (a typo such as ``windw=5``) and an
    uncertainty band from fewer than 2 posterior samples.

    Raises:
        InvalidSettingError (ValueError): the message lists the accepted keywords (and the closest one).
    """
    known = method_options(name)
    if known is not None:
        for key in options:
            if key in known:
                continue
            close = difflib.get_close_matches(key, [*_COMMON, *known], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidSettingError(
                f"unknown option {key!r} for method {name!r}{hint}; accepted: "
                f"{', '.join(sorted({*_COMMON, *known}))}"
            )
    for key in ("steps", "samples", "max_batch"):
        value = options.get(key)
        if value is not None:
            check_count(key, value, 1)
    if name == "sar-dps":
        from geodiff.apps.despeckle.sar_dps import check_estimator

        check_estimator(options)
    samples = options.get("samples")
    if options.get("uncertainty") and samples is not None and int(samples) < 2:
        raise InvalidSettingError(
            f"an uncertainty band (posterior std) needs --samples >= 2; got {samples} (e.g. --samples 4)"
        )


def build(
    name: str,
    *,
    looks: float,
    units: str,
    window: int = DEFAULT_WINDOW,
    sample: tuple[np.ndarray, np.ndarray] | None = None,
    **options: Any,
) -> Callable:
    """The runner function of method ``name`` for one band: the one way every front makes a method.

    Args:
        looks: equivalent number of looks L of the band (> 0).
        units: stored SAR units of the values the function gets and returns
            ("intensity", "amplitude" or "db").
        window: classical filters' window (odd, pixels).
        sample: (linear intensity (H, W) float64, valid (H, W) bool) of the scene; tiles methods
            need it for their scene scale.
        options: method settings (sar-dps: prior, steps, samples, sigma0, init, device, max_batch,
            uncertainty, ...). ``None`` values mean "the default".

    Returns:
        "array" kind: ``fn(block (C, h, w), valid (C, h, w) bool) -> (C, h, w) float32``, stored units in
        and out. "tiles" kind: ``fn(tiles (B, C, h, w) torch.float32, ctx: tiling.runner.TileContext) ->
        (B, outputs, h, w)`` (``fn.outputs`` = 2 with an uncertainty band: mean, posterior std).

    Raises:
        UnknownMethodError: unknown method. InvalidSettingError: looks <= 0, a tiles method without
        ``sample``, a bad sampler setting. UncertaintyNotSupportedError: ``uncertainty`` for a filter.
        NoValidPixelsError: ``sample`` has too few valid pixels to fix the scene scale.
    """
    m = get(name)
    if check_looks(looks) is None:
        raise InvalidSettingError("looks=None: a method needs the looks L > 0 (e.g. --looks 4.4)")
    opts = {k: v for k, v in options.items() if v is not None}
    check_options(name, opts)
    return m.make(looks=float(looks), window=int(window), units=units, sample=sample, **opts)


# ---- classical filters ---------------------------------------------------------------------------
def _classical_block(
    block: np.ndarray, valid: np.ndarray, *, name: str, looks: float, window: int, units: str
) -> np.ndarray:
    """(C, h, w) stored values -> filtered (C, h, w) float32: each band in linear intensity."""
    out = np.empty(block.shape, np.float32)
    for b in range(block.shape[0]):
        inten = to_intensity(block[b].astype(np.float64), units)
        out[b] = from_intensity(apply_filter(name, inten, valid[b], looks, window).astype(np.float64), units)
    return out


def _make_classical(name: str) -> Callable[..., Callable]:
    def make(*, looks: float, window: int, units: str, uncertainty: bool = False, **_: Any) -> Callable:
        if uncertainty:
            raise UncertaintyNotSupportedError(
                f"an uncertainty band needs a sampling method (sar-dps), not the classical filter {name!r}"
            )
        return functools.partial(_classical_block, name=name, looks=looks, window=window, units=units)

    return make


for _name in FILTERS:
    register(
        Method(
            _name,
            "array",
            _make_classical(_name),
            functools.partial(filter_radius, _name),
            f"classical {_name} filter",
        )
    )


# ---- diffusion posterior sampling ------------------------------------------------------------------
def _make_sar_dps(
    *, looks: float, window: int, units: str, sample: tuple[np.ndarray, np.ndarray] | None, **options: Any
) -> Callable:
    from geodiff.apps.despeckle.sar_dps import make_sar_dps, scene_scale

    if sample is None:
        raise InvalidSettingError("sar-dps needs a sample of the scene (intensity, valid) to set its scale")
    prior = options.get("prior", "gray")
    scale = scene_scale(sample[0], sample[1], looks, prior)
    if options.get("likelihood_looks") is None:  # correlated speckle: fewer looks for the i.i.d. likelihood
        from geodiff.apps.despeckle.sar_dps import likelihood_looks

        options = {**options, "likelihood_looks": likelihood_looks(sample[0], sample[1], looks)}
    if options.get("estimator") == "blind-spot" and options.get("blind_spot_radius") is None:
        from geodiff.apps.despeckle.sar_dps import blind_spot_radius

        options = {**options, "blind_spot_radius": blind_spot_radius(sample[0], sample[1], looks)}
    return make_sar_dps(looks=looks, window=window, units=units, scale=scale, **options)


register(
    Method(
        "sar-dps",
        "tiles",
        _make_sar_dps,
        lambda window: 0,
        "diffusion posterior sampling with the gamma speckle likelihood (default)",
        samples=True,
    )
)
