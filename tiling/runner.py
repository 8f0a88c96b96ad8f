"""Process a scene block by block: bounded memory, exact blending, results independent of workers.

Two kinds of user function:

* tile-batch functions (diffusion solvers): ``fn(tiles: torch.Tensor (B, C, P, P), ctx: TileContext)
  -> torch.Tensor (B, C', P, P) or (B, C', tile, tile)`` where P = tile + 2*halo. Every block hands
  all its tiles to one call. Outputs are cropped to the tile, weighted by a strictly positive window
  and overlap-added in float64 (running sum + running weight), then the block writes the pixels it owns.
* array functions (classical neighbourhood filters): ``fn(block: np.ndarray (C, h, w), valid) ->
  np.ndarray (C, h, w)`` applied to the block's own pixels plus ``halo`` on every side.

Why results do not depend on chunking or worker count: the block layout belongs to the
:class:`~tiling.plan.TilePlan` (not to dask), each block reads everything it needs itself (tiles that
straddle two blocks are computed by both, identically), every tile's seed comes from its global grid
position, and each output pixel is written by exactly one block. Float64 accumulation of identical
tile values divided by the weight sum rounds back to the same float32: a pixel-wise function gives
bit-identical results tiled and untiled.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from tiling.plan import Block, TilePlan
from tiling.progress import Progress
from tiling.windows import window_2d

if TYPE_CHECKING:  # torch is imported where tiles are processed: array jobs and their workers skip it
    import torch

    from tiling.blend import BlendHook

log = logging.getLogger(__name__)


class Source(Protocol):
    height: int
    width: int

    def read(self, row0: int, col0: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class TileContext:
    """What a tile-batch function knows about the tiles it was handed (row-major over the block grid)."""

    plan: TilePlan
    block: Block
    ids: list[tuple[int, int]]  # global (tile row, tile col)
    origins: list[tuple[int, int]]  # top-left raster pixel of each tile (halo excluded)
    seeds: list[int]  # from the global tile position only
    valid: torch.Tensor  # (B, C, P, P) bool: finite, not nodata (reflected outside the raster)
    blend: BlendHook  # per-step consensus over this block's tiles: blend(tiles) -> tiles
    extra: dict[str, Any] = field(default_factory=dict)

    def generators(self, device: torch.device | str = "cpu") -> list[torch.Generator]:
        """One generator per tile, seeded by its global position."""
        import torch

        return [torch.Generator(device=device).manual_seed(s) for s in self.seeds]

    def randn(self, shape_per_tile: tuple[int, ...], device: torch.device | str = "cpu", dtype=None):  # noqa: ANN001
        """Per-tile Gaussian noise (B, *shape_per_tile) that depends only on each tile's grid position."""
        import torch

        gens = self.generators(device)
        return torch.stack(
            [torch.randn(shape_per_tile, generator=g, device=device, dtype=dtype) for g in gens]
        )


TileFn = Callable[["torch.Tensor", TileContext], "torch.Tensor"]
ArrayFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class BlockResult:
    block: Block
    data: np.ndarray  # (C, h, w) float32, ``fill`` where invalid
    valid: np.ndarray  # (C, h, w) bool
    nonfinite: int = 0  # NaN/inf input pixels in the owned area (treated as nodata)


def _output_mask(valid: np.ndarray, channels: int) -> np.ndarray:
    if valid.shape[0] == channels:
        return valid
    return np.broadcast_to(valid.all(axis=0, keepdims=True), (channels, *valid.shape[1:]))


def _count_nonfinite(data: np.ndarray, nodata: float | None) -> int:
    """NaN/inf pixels that are not the declared nodata (NaN nodata is ordinary nodata)."""
    bad = ~np.isfinite(data)
    if nodata is not None and np.isnan(nodata):
        bad &= ~np.isnan(data)
    return int(bad.sum())


def compute_block_tiles(
    source: Source,
    plan: TilePlan,
    block: Block,
    fn: TileFn,
    *,
    device: torch.device | str = "cpu",
    window: str = "hann",
    fill: float = np.nan,
    extra: dict | None = None,
) -> BlockResult:
    """Run one block of a tile-batch function; see the module docstring."""
    import torch

    from tiling.blend import BlendHook, blend_tiles, extract_tiles

    r0, c0, h, w = plan.block_extent(block)
    halo, p, t, s = plan.halo, plan.patch, plan.tile, plan.stride
    data, valid = source.read(r0 - halo, c0 - halo, h + 2 * halo, w + 2 * halo)
    grid = block.grid_shape
    tiles = extract_tiles(torch.from_numpy(np.where(valid, data, 0).astype(data.dtype)), grid, p, s)
    vt = extract_tiles(torch.from_numpy(valid.astype(np.float32)), grid, p, s) > 0.5
    ids = [
        (i, j)
        for i in range(block.tile_rows[0], block.tile_rows[1] + 1)
        for j in range(block.tile_cols[0], block.tile_cols[1] + 1)
    ]
    ctx = TileContext(
        plan=plan,
        block=block,
        ids=ids,
        origins=[plan.tile_origin(i, j) for i, j in ids],
        seeds=[plan.tile_seed(i, j) for i, j in ids],
        valid=vt.to(device),
        blend=BlendHook(grid, p, s, window),
        extra=dict(extra or {}),
    )
    with torch.no_grad():
        out = fn(tiles.to(device), ctx)
    if out.ndim != 4 or out.shape[0] != tiles.shape[0]:
        raise ValueError(
            f"tile function returned {tuple(out.shape)}; expected ({tiles.shape[0]}, C, {p}, {p})"
        )
    if out.shape[-1] == p and halo:
        out = out[..., halo : p - halo, halo : p - halo]
    elif out.shape[-1] != t:
        raise ValueError(f"tile function returned {out.shape[-1]}px tiles; expected {p} (with halo) or {t}")
    weight = torch.from_numpy(window_2d(t, t, window).copy())
    canvas = blend_tiles(out.detach().to("cpu", torch.float64), grid, s, weight).numpy()
    cr0, cc0, ch, cw = block.core
    core = canvas[:, cr0 - r0 : cr0 - r0 + ch, cc0 - c0 : cc0 - c0 + cw]
    vcore = valid[:, cr0 - r0 + halo : cr0 - r0 + halo + ch, cc0 - c0 + halo : cc0 - c0 + halo + cw]
    vout = _output_mask(vcore, core.shape[0])
    dcore = data[:, cr0 - r0 + halo : cr0 - r0 + halo + ch, cc0 - c0 + halo : cc0 - c0 + halo + cw]
    bad = _count_nonfinite(dcore, getattr(source, "nodata", None))
    return BlockResult(block, np.where(vout, core, fill).astype(np.float32), vout, bad)


def compute_block_array(
    source: Source, plan: TilePlan, block: Block, fn: ArrayFn, *, fill: float = np.nan
) -> BlockResult:
    """Run one block of an array function on its owned pixels plus ``halo`` context."""
    cr0, cc0, ch, cw = block.core
    halo = plan.halo
    data, valid = source.read(cr0 - halo, cc0 - halo, ch + 2 * halo, cw + 2 * halo)
    out = np.asarray(fn(np.where(valid, data, 0).astype(data.dtype), valid))
    core = out[:, halo : halo + ch, halo : halo + cw]
    vcore = valid[:, halo : halo + ch, halo : halo + cw]
    vout = _output_mask(vcore, core.shape[0])
    bad = _count_nonfinite(data[:, halo : halo + ch, halo : halo + cw], getattr(source, "nodata", None))
    return BlockResult(block, np.where(vout, core, fill).astype(np.float32), vout, bad)


def block_function(
    source: Source, plan: TilePlan, fn: Callable, kind: str = "tiles", **kwargs: Any
) -> Callable[[Block], BlockResult]:
    """A picklable ``block -> BlockResult`` for the given source, plan and user function."""
    if kind == "tiles":
        return functools.partial(compute_block_tiles, source, plan, fn=fn, **kwargs)
    if kind == "array":
        return functools.partial(compute_block_array, source, plan, fn=fn, **kwargs)
    raise ValueError(f"unknown function kind {kind!r}; use 'tiles' or 'array'")


def _serial(task: Callable[[Block], BlockResult], blocks: Iterable[Block]) -> Iterator[BlockResult]:
    for b in blocks:
        yield task(b)


def _distributed(
    task: Callable[[Block], BlockResult], blocks: list[Block], client: Any
) -> Iterator[BlockResult]:
    """Submit blocks with a bounded number in flight; yield results as they finish (any order)."""
    from distributed import as_completed

    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    in_flight = 2 * n_workers
    token = uuid.uuid4().hex[:8]
    todo = iter(enumerate(blocks))
    first = [
        client.submit(task, b, key=f"geodiff-block-{token}-{i}", pure=False)
        for i, b in _take(todo, in_flight)
    ]
    queue = as_completed(first)
    for fut in queue:
        result = fut.result()
        fut.release()
        for i, b in _take(todo, 1):
            queue.add(client.submit(task, b, key=f"geodiff-block-{token}-{i}", pure=False))
        yield result


def _take(it: Iterator, n: int) -> list:
    out = []
    for _ in range(n):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


def run_blocks(
    task: Callable[[Block], BlockResult],
    blocks: list[Block],
    sink: Callable[[BlockResult], None],
    *,
    client: Any = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Compute every block (in-process, or on a dask cluster) and hand each result to ``sink``.

    ``workers > 1`` without a ``client`` starts a process-based ``LocalCluster`` for this run.
    Memory on the caller's side is bounded by the number of blocks in flight. Returns the count of
    valid output pixels and of NaN/inf input pixels (treated as nodata).
    """
    with dask_client(client, workers) as client:
        results = _serial(task, blocks) if client is None else _distributed(task, blocks, client)
        n_valid = n_bad = 0
        for res in results:
            sink(res)
            n_valid += int(res.valid.sum())
            n_bad += res.nonfinite
            if progress is not None:
                progress.update(1)
        return n_valid, n_bad


@contextlib.contextmanager
def dask_client(client: Any = None, workers: int | None = None) -> Iterator[Any]:
    """The given client; else a process-based LocalCluster for ``workers > 1``; else None (in-process)."""
    if client is not None or not workers or workers <= 1:
        yield client
        return
    from distributed import Client, LocalCluster

    quiet = logging.getLogger("distributed")  # its INFO chatter would drown the progress bar
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))
    with (
        contextlib.ExitStack() as restore,
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as own,
    ):
        restore.callback(quiet.setLevel, level)
        yield own


def run_array(
    source: Source,
    plan: TilePlan,
    fn: Callable,
    *,
    kind: str = "tiles",
    channels: int | None = None,
    client: Any = None,
    workers: int | None = None,
    progress: Progress | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Whole-scene result in memory (tests, small scenes); the same blocks as the raster path."""
    out: np.ndarray | None = None

    def sink(res: BlockResult) -> None:
        nonlocal out
        if out is None:
            out = np.empty((channels or res.data.shape[0], plan.height, plan.width), np.float32)
        r0, c0, h, w = res.block.core
        out[:, r0 : r0 + h, c0 : c0 + w] = res.data

    task = block_function(source, plan, fn, kind, **kwargs)
    run_blocks(task, list(plan.blocks()), sink, client=client, workers=workers, progress=progress)
    assert out is not None
    return out


def run_raster(
    in_path: str,
    out_path: str,
    fn: Callable,
    *,
    kind: str = "tiles",
    tile: int = 256,
    overlap: int = 32,
    halo: int = 0,
    block_tiles: int = 4,
    seed: int = 0,
    band_groups: list[list[int]] | None = None,
    overwrite: bool = False,
    client: Any = None,
    workers: int | None = None,
    progress: bool | Progress | None = True,
    desc: str = "geodiff",
    outputs_per_band: int = 1,
    descriptions: list[str] | None = None,
    before_cog: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> dict:
    """Read ``in_path`` block by block, run ``fn`` through the plan and write a COG to ``out_path``.

    ``band_groups`` lists the 1-based input bands handed together to ``fn`` (default: all at once);
    ``fn`` may be a list with one function per group (e.g. each band with its own looks and scale);
    output band k of a group is written to the group's k-th band. With ``outputs_per_band = m`` the
    function returns m planes per input band (e.g. estimate and uncertainty): plane j of input band b
    goes to output band b + j * count. ``descriptions`` names the output bands, ``before_cog`` sees
    the finished temporary GeoTIFF (see :class:`~tiling.raster_io.CogWriter`). Returns a summary dict.
    """
    import rasterio

    from tiling.raster_io import GDAL_CACHE_BYTES, CogWriter, RasterSource, check_output_path

    check_output_path(out_path, overwrite, inputs=(in_path,))
    probe = RasterSource(in_path)
    meta = probe.meta
    if not meta.georeferenced:
        import warnings

        warnings.warn(
            f"{in_path}: has no georeferencing (no CRS/transform or GCPs); processing in pixel coordinates",
            UserWarning,
            stacklevel=2,
        )
    plan = TilePlan(meta.height, meta.width, tile, overlap, halo, block_tiles, seed)
    groups = band_groups or [list(range(1, meta.count + 1))]
    fill = meta.nodata if meta.nodata is not None else np.nan
    blocks = list(plan.blocks())
    reporter = (
        progress
        if isinstance(progress, Progress)
        else Progress(len(blocks) * len(groups), desc=desc, mode=None if progress else "none")
    )
    n_valid = n_bad = 0
    try:
        # one cluster for every band group; GDAL's block cache (default 5 % of RAM) would grow
        # with the scene: cap it
        with (
            rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES),
            dask_client(client, workers) as client,
            CogWriter(
                out_path,
                meta,
                count=meta.count * outputs_per_band,
                overwrite=overwrite,
                inputs=(in_path,),
                descriptions=descriptions,
                before_cog=before_cog,
            ) as writer,
        ):
            fns = fn if isinstance(fn, list) else [fn] * len(groups)
            if len(fns) != len(groups):
                raise ValueError(
                    f"got {len(fns)} functions for {len(groups)} band groups; pass one per group"
                )
            for bands, group_fn in zip(groups, fns, strict=True):
                source = RasterSource(in_path, bands)
                task = block_function(source, plan, group_fn, kind, fill=fill, **kwargs)

                out_bands = [b + j * meta.count for j in range(outputs_per_band) for b in bands]

                def sink(res: BlockResult, out_bands: list[int] = out_bands) -> None:
                    r0, c0, _, _ = res.block.core
                    writer.write(res.data, r0, c0, out_bands[: res.data.shape[0]], valid=res.valid)

                try:
                    nv, nb = run_blocks(task, blocks, sink, client=client, workers=workers, progress=reporter)
                finally:
                    source.close()
                n_valid, n_bad = n_valid + nv, n_bad + nb
            if n_valid == 0:  # raised inside the writer: nothing appears under the final name
                raise ValueError(
                    f"{in_path}: every pixel is nodata (nodata={meta.nodata}) or NaN/inf; nothing to "
                    "process. Check the input band and its nodata value"
                )
    finally:
        if not isinstance(progress, Progress):
            reporter.close()
    total = meta.height * meta.width * sum(len(g) for g in groups) * outputs_per_band
    if n_bad:
        import warnings

        warnings.warn(
            f"{in_path}: {n_bad} NaN/inf pixel(s) were treated as nodata and are nodata in the output",
            UserWarning,
            stacklevel=2,
        )
    return {
        "input": str(in_path),
        "output": str(out_path),
        "width": meta.width,
        "height": meta.height,
        "bands": meta.count,
        "tiles": plan.n_tiles,
        "blocks": len(blocks),
        "valid_fraction": n_valid / total,
        "nonfinite_pixels": n_bad,
    }
