"""Training data for gray priors: whole images in the amplitude domain, cut into random crops.

Domain "amplitude" (fixed; the solvers rely on it):
    8-bit gray g        -> a = (g + 1) / 256
    float amplitude r   -> a = r / max(r)                     (.npy SAR references, PROTOCOL 1)
    uint16 / other ints -> g = 255 * (x - p0.5) / (p99.5 - p0.5) clipped, then as 8-bit gray
    model space         -> z = 2 a - 1
    "<name>.amp.npy"    -> already amplitude in [0, 1] (float16/32, NaN = nodata): a packed cache
                           written by `pack_amplitude`, so training needs neither rasterio nor the
                           original rasters (e.g. on a GPU machine).
Multi-band rasters are reduced to gray with the ITU-R 601 luma weights PIL's convert("L") uses.
Pixels equal to a raster's nodata value are masked; crops never include them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from geodiff.errors import InputError

log = logging.getLogger(__name__)

AMP_SUFFIX = ".amp.npy"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".npy"}
NORMALISATION = {
    "uint8": "a = (g + 1) / 256, z = 2a - 1",
    "float": "a = x / max(x), z = 2a - 1",
    "int": "g = clip(255 (x - p0.5) / (p99.5 - p0.5), 0, 255); a = (g + 1) / 256; z = 2a - 1",
}
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


@dataclass
class AmplitudeImage:
    """One training image: amplitude in [0, 1] and a validity mask (None: all valid)."""

    path: str
    amp: np.ndarray  # float32 (H, W)
    valid: np.ndarray | None  # bool (H, W)


def gray_to_amplitude(g: np.ndarray) -> np.ndarray:
    """8-bit gray levels g (any shape) to amplitude a = (g + 1) / 256 in (0, 1], float32."""
    return ((np.asarray(g, dtype=np.float32) + 1.0) / 256.0).astype(np.float32)


def amplitude_to_model(a: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Amplitude a in [0, 1] to the model domain z = 2a - 1 in [-1, 1] (same type and shape)."""
    return 2 * a - 1


def _to_gray(bands: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W); luma for 3+ bands (first three taken as R, G, B)."""
    if bands.shape[0] >= 3:
        return np.tensordot(_LUMA, bands[:3].astype(np.float64), axes=1)
    return bands[0].astype(np.float64)


def _robust_8bit(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    v = x[valid]
    lo, hi = np.percentile(v, [0.5, 99.5]) if v.size else (0.0, 1.0)
    return np.clip(255.0 * (x - lo) / max(hi - lo, 1e-12), 0, 255)


def _by_maximum(p: Path, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Float amplitude normalised by its largest valid value (PROTOCOL 1's .npy references)."""
    m = float(np.max(x[valid])) if valid.any() else 0.0
    if m <= 0:
        raise InputError(f"{p}: no positive finite values; cannot normalise by its maximum")
    return np.where(valid, x / m, 0.0)


def _read_cache(p: Path) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(np.load(p, allow_pickle=False), dtype=np.float32)
    if x.ndim != 2:
        raise InputError(f"{p}: a packed amplitude cache must be 2-D, got shape {x.shape}; re-pack it")
    valid = np.isfinite(x)
    return np.where(valid, x, 0.0), valid


def _read_npy(p: Path) -> tuple[np.ndarray, np.ndarray]:
    x = np.load(p, allow_pickle=False)
    x = np.asarray(np.abs(x) if np.iscomplexobj(x) else x, dtype=np.float64)
    if x.ndim == 3:
        x = x[0] if x.shape[0] <= 4 else x[..., 0]
    valid = np.isfinite(x)
    return _by_maximum(p, x, valid), valid


def _read_raster(p: Path, rgb_order: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
    import rasterio

    with rasterio.open(p) as ds:
        data = ds.read(masked=True)
        dtype = ds.dtypes[0]
    bands = np.ma.getdata(data)
    gray = _to_gray(bands[list(rgb_order)] if rgb_order is not None else bands)
    valid = ~np.ma.getmaskarray(data).any(axis=0)
    if dtype == "uint8":
        return gray_to_amplitude(gray), valid
    if np.issubdtype(np.dtype(dtype), np.integer):
        return gray_to_amplitude(_robust_8bit(gray, valid)), valid
    valid &= np.isfinite(gray)
    return _by_maximum(p, gray, valid), valid


def _read_image(p: Path) -> tuple[np.ndarray, None]:
    from PIL import Image

    with Image.open(p) as im:
        if im.mode in ("I;16", "I;16B", "I"):
            x = np.asarray(im, dtype=np.float64)
            return gray_to_amplitude(_robust_8bit(x, np.ones(x.shape, bool))), None
        return gray_to_amplitude(np.asarray(im.convert("L"))), None


def load_amplitude(path: str | os.PathLike, rgb_order: Sequence[int] | None = None) -> AmplitudeImage:
    """Read an image, raster, .npy or packed cache and map it to amplitude in [0, 1] (module rules).

    Returns an :class:`AmplitudeImage` (float32 (H, W) amplitude, validity mask or None). Raises
    FileNotFoundError for a missing file, geodiff.errors.InputError for data that cannot be normalised.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such training image (check the path)")
    suffix = p.suffix.lower()
    if p.name.lower().endswith(AMP_SUFFIX):
        amp, valid = _read_cache(p)
    elif suffix == ".npy":
        amp, valid = _read_npy(p)
    elif suffix in {".tif", ".tiff"}:
        amp, valid = _read_raster(p, rgb_order)
    else:
        amp, valid = _read_image(p)
    amp = np.clip(np.asarray(amp, dtype=np.float32), 0.0, 1.0)
    if valid is not None and valid.all():
        valid = None
    return AmplitudeImage(str(p), amp, valid)


def pack_amplitude(path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write <out_dir>/<stem>.amp.npy (float16 amplitude, NaN = nodata) for one training image.

    float16 keeps 11 bits, finer than the 8-bit sources and enough for the float ones.
    """
    im = load_amplitude(path)
    a = im.amp.astype(np.float16)
    if im.valid is not None:
        a[~im.valid] = np.nan
    out = Path(out_dir) / (Path(path).stem + AMP_SUFFIX)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, a)
    return out


def expand_sources(sources: Iterable[str | os.PathLike], exclude: Iterable[str] = ()) -> list[Path]:
    """Files named directly plus image files found (recursively) in folders, sorted, minus excludes.

    ``exclude`` holds glob patterns matched against file names (e.g. "019[0-4]?.jpg").
    """
    files: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: training data path does not exist (give image files or folders)")
    excl = list(exclude)
    out = [f for f in dict.fromkeys(files) if not any(f.match(e) for e in excl)]
    if not out:
        raise InputError("no training images found; give folders or files with .png/.jpg/.tif/.npy images")
    return out


class CropSampler:
    """Random square crops with random flips and 90-degree rotations, in model space z = 2a - 1.

    Images are drawn with probability proportional to their valid area, so a few large scenes
    and many small images contribute pixels evenly.
    """

    def __init__(self, images: Sequence[AmplitudeImage], tile: int, seed: int = 0) -> None:
        self.images = [im for im in images if min(im.amp.shape) >= tile]
        if not self.images:
            raise InputError(f"no training image is at least {tile}x{tile}; use a smaller --tile")
        skipped = len(images) - len(self.images)
        if skipped:
            log.warning("%d images smaller than the %d px tile were skipped", skipped, tile)
        self.tile = tile
        area = np.array([im.amp.size if im.valid is None else im.valid.sum() for im in self.images], float)
        self.p = area / area.sum()
        self.rng = np.random.default_rng(seed)

    def crop(self) -> np.ndarray:
        """One random fully valid tile x tile amplitude crop (float32, randomly rotated/flipped).

        Raises ValueError when 100 tries find no fully valid crop.
        """
        T = self.tile
        for _ in range(100):
            im = self.images[self.rng.choice(len(self.images), p=self.p)]
            h, w = im.amp.shape
            y, x = self.rng.integers(0, h - T + 1), self.rng.integers(0, w - T + 1)
            if im.valid is None or im.valid[y : y + T, x : x + T].all():
                c = im.amp[y : y + T, x : x + T]
                c = np.rot90(c, int(self.rng.integers(4)))
                if self.rng.integers(2):
                    c = c[:, ::-1]
                return np.ascontiguousarray(c)
        raise InputError("could not find a fully valid crop after 100 tries; the images are mostly nodata")

    def batch(self, n: int) -> torch.Tensor:
        """n crops as a float32 tensor (n, 1, tile, tile) in the model domain z = 2a - 1."""
        a = np.stack([self.crop() for _ in range(n)])[:, None]
        return torch.from_numpy(amplitude_to_model(a))

    def median_amplitude(self, max_pixels: int = 2_000_000) -> float:
        """Median amplitude over the training pixels (subsampled evenly per image)."""
        per = max(1, max_pixels // len(self.images))
        vals = []
        rng = np.random.default_rng(0)
        for im in self.images:
            v = im.amp[im.valid] if im.valid is not None else im.amp.ravel()
            vals.append(rng.choice(v, size=min(per, v.size), replace=False))
        return float(np.median(np.concatenate(vals)))

    def state(self) -> dict:
        """The numpy generator state (JSON-serialisable), for resumable training."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        """Restore a state from :meth:`state`."""
        self.rng.bit_generator.state = state
