"""geodiff's own raster tags: a settings object stored as one JSON object per dataset tag."""

from __future__ import annotations

from typing import Any

from geodiff.errors import InvalidSettingError

__all__ = ["read_json_tag"]


def read_json_tag(tags: dict[str, str], key: str, writer: str) -> dict[str, Any]:
    """The JSON object stored under ``key`` in a raster's dataset tags (rasterio ``ds.tags()``).

    ``writer`` names the command that writes the tag, for the message.

    Raises:
        InvalidSettingError (a ValueError): no such tag, or it does not hold a JSON object.
    """
    import json

    if key not in tags:
        raise InvalidSettingError(f"no {key} tag: the raster was not written by {writer}")
    try:
        values = json.loads(tags[key])
    except json.JSONDecodeError as exc:
        raise InvalidSettingError(f"the {key} tag is not JSON ({exc})") from exc
    if not isinstance(values, dict):
        raise InvalidSettingError(f"the {key} tag must hold a JSON object")
    return values
