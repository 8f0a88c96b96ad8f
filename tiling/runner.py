"""Process a scene block by block: bounded memory, exact blending, results independent of workers.

Two kinds of user function:

* tile-batch functions (``kind="tiles"``, diffusion solvers): ``fn(tiles, ctx) -> tiles'`` with
  ``tiles`` a torch tensor (B, C, P, P), P = tile + 2*halo, and ``ctx`` a :class:`TileContext`; it
  returns (B, C', P, P) or (B, C', tile, tile). Every block hands all its tiles to one call. Outputs
  are cropped to the tile, weighted by a strictly positive window and overlap-added in float64
  (running sum + running weight), then the block keeps the pixels it owns.
* array functions (``kind="array"``, classical neighbourhood filters): ``fn(block, valid) -> block'``
  on numpy (C, h, w) arrays of the block's own pixels plus ``halo`` on every side (nodata set to 0,
  ``valid`` (C, h, w) bool); it returns (C', h, w).

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
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tiling.errors import ClusterResourceError, NoValidPixelsError, TileFunctionError
from tiling.plan import Block, TilePlan, TileSpec
from tiling.progress import Progress, reporter
from tiling.sources import Source
from tiling.windows import window_2d

if TYPE_CHECKING:  # torch is imported where tiles are processed: array jobs and their workers skip it
    import torch

    from tiling.blend import BlendHook

log = logging.getLogger(__name__)

__all__ = [
    "BlockResult",
    "RasterOutput",
    "RunOptions",
    "TileContext",
    "block_function",
    "block_resources",
    "compute_block_array",
    "compute_block_tiles",
    "dask_client",
    "run_array",
    "run_blocks",
    "run_raster",
    "scheduler_address",
    "torch_threads",
]

KINDS = ("tiles", "array")
#: retries of a block task that raised on a worker (a lost worker's blocks are rescheduled anyway)
RETRIES = 2


@dataclass(frozen=True)
class RunOptions:
    """How a run executes (never what it computes: results do not depend on these).

    client: a ``distributed.Client`` to run blocks on; workers: with no client, ``workers > 1`` starts
    a process-based ``LocalCluster`` for the run. progress: True for a tqdm/JSON reporter
    (``GEODIFF_PROGRESS``), a :class:`~tiling.progress.Progress` to report into, False/None for none;
    desc: its label. device: torch device tile functions run on (``"cpu"``, ``"cuda"``); window:
    blending window of overlapping tiles (see :data:`tiling.windows.WINDOWS`); resources: dask
    resources each block task asks for (default: :func:`block_resources`, ``{"GPU": 1}`` on CUDA);
    blocks_in_flight: blocks computed at once in-process (default :func:`blocks_in_flight`: 2 on CUDA,
    so the host's part of a block (reading, blending, writing) overlaps the device's work on the next;
    else 1).
    """

    client: Any = None
    workers: int | None = None
    progress: bool | Progress | None = False
    desc: str = "geodiff"
    device: Any = "cpu"
    window: str = "hann"
    resources: dict[str, float] | None = None
    blocks_in_flight: int | None = None


@dataclass(frozen=True)
class RasterOutput:
    """What :func:`run_raster` writes besides the pixels.

    band_groups: 1-based input bands handed together to the function (default: all at once); the
        function may be a list with one function per group (e.g. each band with its own looks).
    outputs_per_band: m planes per input band (e.g. estimate and uncertainty): plane j of input
        band b goes to output band ``b + j * count``.
    descriptions: output band names; before_cog: sees the finished scratch GeoTIFF (see
        :class:`~tiling.cog.CogWriter`); overwrite: replace an existing output. input_nodata: the
        nodata value of an input that declares none (e.g. 0 for a sensor whose zero means no data);
        it marks the invalid input pixels and becomes the output's nodata. resume: what decides the
        pixels besides the input, the plan, the seed and the layout (the method and its settings,
        JSON-ready); given, finished blocks are kept beside the output while the run works so that
        an interrupted run continues from them (:mod:`tiling.resume`); None: no resume state.
    """

    band_groups: Sequence[Sequence[int]] | None = None
    outputs_per_band: int = 1
    descriptions: Sequence[str] | None = None
    before_cog: Callable[[str], None] | None = None
    overwrite: bool = False
    input_nodata: float | None = None
    resume: dict[str, Any] | None = None


@dataclass
class TileContext:
    """What a tile-batch function knows about the tiles it was handed (row-major over the block grid).

    plan / block: the tile plan and the block being processed; ids: global (tile row, tile col) of
    each tile; seeds: one 63-bit seed per tile from its grid position only; valid: (B, C, P, P) bool
    on the run's device (finite and not nodata; reflected outside the raster); blend: the per-step
    consensus over this block's tiles, ``blend(tiles) -> tiles`` (:class:`~tiling.blend.BlendHook`).
    """

    plan: TilePlan
    block: Block
    ids: list[tuple[int, int]]
    seeds: list[int]
    valid: torch.Tensor
    blend: BlendHook

    def _generators(self, device: torch.device | str = "cpu") -> list[torch.Generator]:
        """One torch generator per tile, seeded by its global position."""
        import torch

        return [torch.Generator(device=device).manual_seed(s) for s in self.seeds]

    def randn(self, shape_per_tile: tuple[int, ...], device: torch.device | str = "cpu", dtype=None):  # noqa: ANN001, ANN201
        """Per-tile standard Gaussian noise (B, *shape_per_tile) that depends only on tile positions."""
        import torch

        return torch.stack(
            [
                torch.randn(shape_per_tile, generator=g, device=device, dtype=dtype)
                for g in self._generators(device)
            ]
        )


TileFn = Callable[["torch.Tensor", TileContext], "torch.Tensor"]
ArrayFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class BlockResult:
    """One block's output: ``data`` (C, h, w) float32 (``fill`` where invalid) over ``block.core``,
    ``valid`` (C, h, w) bool, and the count of NaN/inf input pixels in the core (treated as nodata)."""

    block: Block
    data: np.ndarray
    valid: np.ndarray
    nonfinite: int = 0


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


def _result(
    block: Block, out: np.ndarray, data: np.ndarray, valid: np.ndarray, nodata: float | None, fill: float
) -> BlockResult:
    """BlockResult from the core's output (C', h, w), input data and validity (C, h, w)."""
    vout = _output_mask(valid, out.shape[0])
    return BlockResult(
        block, np.where(vout, out, fill).astype(np.float32), vout, _count_nonfinite(data, nodata)
    )


def _crop_tiles(out: torch.Tensor, n: int, plan: TilePlan) -> torch.Tensor:
    """Tile outputs cropped to the tile (halo removed); checks the function's output shape."""
    p, t, halo = plan.patch, plan.tile, plan.halo
    if out.ndim != 4 or out.shape[0] != n:
        raise TileFunctionError(f"tile function returned {tuple(out.shape)}; expected ({n}, C, {p}, {p})")
    if out.shape[-1] == p and halo:
        return out[..., halo : p - halo, halo : p - halo]
    if out.shape[-1] != t:
        raise TileFunctionError(
            f"tile function returned {out.shape[-1]}px tiles; expected {p} (with halo) or {t}"
        )
    return out


def compute_block_tiles(
    source: Source,
    plan: TilePlan,
    block: Block,
    fn: TileFn,
    *,
    device: torch.device | str = "cpu",
    window: str = "hann",
    fill: float = np.nan,
) -> BlockResult:
    """Run one block of a tile-batch function (see the module docstring); pixels of ``block.core``.

    Raises:
        TileFunctionError (ValueError): the function returned the wrong number or size of tiles.
    """
    with torch_threads(device):
        return _block_tiles(source, plan, block, fn, device=device, window=window, fill=fill)


#: torch intra-op threads of every tile-batch call on the CPU unless ``GEODIFF_THREADS`` says otherwise
TORCH_THREADS = 1
#: the environment variable that sets them (the same that :mod:`geodiff.device` reads)
THREADS_ENV = "GEODIFF_THREADS"


@contextlib.contextmanager
def torch_threads(device: Any = "cpu") -> Iterator[None]:
    """Within the block, torch runs on the CPU with a fixed number of intra-op threads:
    ``GEODIFF_THREADS`` when set (a whole number >= 1), else :data:`TORCH_THREADS` = 1; the previous
    count is restored after.

    Why: some CPU kernels split their sums by thread (measured: oneDNN's 1x1 convolution of the
    prior's decoder gives different last bits with 1 and 2 threads, and the posterior mean differs by
    up to 7e-7 on half of the pixels), while a dask worker runs 1 thread and an in-process run as many
    as the machine has. A fixed count makes ``--workers 1/2/4`` and in-process runs bit-identical (with
    ``GEODIFF_THREADS=N``: runs with the same N). Nothing changes on CUDA devices.

    Raises:
        ValueError: ``GEODIFF_THREADS`` is not a whole number >= 1.
    """
    import torch

    if torch.device(device).type != "cpu":
        yield
        return
    raw = os.environ.get(THREADS_ENV, "").strip()
    wanted = TORCH_THREADS
    if raw:
        wanted = int(raw) if raw.isdigit() else 0
        if wanted < 1:
            raise ValueError(
                f"{THREADS_ENV}={raw!r} is not a thread count; set it to a whole number >= 1 or unset it"
            )
    old = torch.get_num_threads()
    if old != wanted:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def _block_tiles(
    source: Source, plan: TilePlan, block: Block, fn: TileFn, *, device: Any, window: str, fill: float
) -> BlockResult:
    import torch

    from tiling.blend import BlendHook, blend_tiles, extract_tiles

    halo, p, s = plan.halo, plan.patch, plan.stride
    data, valid = source.read(block.extent.grow(halo))
    grid = block.grid_shape
    tiles = extract_tiles(torch.from_numpy(np.where(valid, data, 0).astype(data.dtype)), grid, p, s)
    vt = extract_tiles(torch.from_numpy(valid.astype(np.float32)), grid, p, s) > 0.5
    ids = block.tile_ids
    ctx = TileContext(
        plan=plan,
        block=block,
        ids=ids,
        seeds=[plan.tile_seed(i, j) for i, j in ids],
        valid=vt.to(device),
        blend=BlendHook(grid, p, s, window),
    )
    with torch.no_grad():
        out = _crop_tiles(fn(tiles.to(device), ctx), tiles.shape[0], plan)
    weight = torch.from_numpy(window_2d(plan.tile, plan.tile, window).copy())
    canvas = blend_tiles(out.detach().to("cpu", torch.float64), grid, s, weight).numpy()
    core = block.core.relative_to(block.extent)  # in canvas coordinates
    in_data = block.core.relative_to(block.extent.grow(halo))  # in the coordinates of what was read
    return _result(
        block,
        core.crop(canvas),
        in_data.crop(data),
        in_data.crop(valid),
        getattr(source, "nodata", None),
        fill,
    )


def compute_block_array(
    source: Source, plan: TilePlan, block: Block, fn: ArrayFn, *, fill: float = np.nan
) -> BlockResult:
    """Run one block of an array function on its owned pixels plus ``halo`` context on every side."""
    read = block.core.grow(plan.halo)
    data, valid = source.read(read)
    out = np.asarray(fn(np.where(valid, data, 0).astype(data.dtype), valid))
    core = block.core.relative_to(read)
    return _result(
        block, core.crop(out), core.crop(data), core.crop(valid), getattr(source, "nodata", None), fill
    )


def block_function(
    source: Source, plan: TilePlan, fn: Callable, kind: str = "tiles", **kwargs: Any
) -> Callable[[Block], BlockResult]:
    """A picklable ``block -> BlockResult`` for the given source, plan and user function.

    ``kwargs`` go to :func:`compute_block_tiles` (device, window, fill) or :func:`compute_block_array`
    (fill).

    Raises:
        ValueError: ``kind`` is not "tiles" or "array".
    """
    if kind == "tiles":
        return functools.partial(compute_block_tiles, source, plan, fn=fn, **kwargs)
    if kind == "array":
        return functools.partial(compute_block_array, source, plan, fn=fn, **kwargs)
    raise ValueError(f"unknown function kind {kind!r}; use one of {', '.join(KINDS)}")


def _serial(task: Callable[[Block], BlockResult], blocks: Iterable[Block]) -> Iterator[BlockResult]:
    for b in blocks:
        yield task(b)


def _threaded(
    task: Callable[[Block], BlockResult], blocks: Iterable[Block], depth: int
) -> Iterator[BlockResult]:
    """Results in block order, ``depth`` blocks computed at once by threads (torch and GDAL release the
    GIL): while the caller writes block n, blocks n+1 .. n+depth run. Each block's result depends on
    the block alone, so the bits are those of :func:`_serial`. A failed block raises here, in order;
    on any exit the blocks not started are cancelled (those running finish in the background)."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="geodiff-block")
    it = iter(blocks)
    pending = deque(pool.submit(task, b) for b in _take(it, depth))
    try:
        while pending:
            res = pending.popleft().result()
            pending.extend(pool.submit(task, b) for b in _take(it, 1))
            yield res
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _on_cuda(options: RunOptions, fns: Sequence[Callable]) -> bool:
    devices = [options.device, *(getattr(f, "device", None) for f in fns)]
    return any(str(d).startswith("cuda") for d in devices if d is not None)


def blocks_in_flight(options: RunOptions, fns: Sequence[Callable] = ()) -> int:
    """Blocks an in-process run computes at once: ``options.blocks_in_flight`` when given, else 2 when
    ``options.device`` or a tile function's ``device`` is CUDA, else 1. On a CPU every block already
    has the cores it should (:func:`torch_threads`), and that thread setting is process-wide, so CPU
    runs stay one block at a time.

    Raises:
        ValueError: ``options.blocks_in_flight`` < 1.
    """
    n = options.blocks_in_flight
    if n is None:
        return 2 if _on_cuda(options, fns) else 1
    if n < 1:
        raise ValueError(f"blocks_in_flight must be >= 1 (got {n})")
    return int(n)


def block_resources(options: RunOptions, fns: Sequence[Callable] = ()) -> dict[str, float] | None:
    """The dask resources every block task asks for: ``options.resources`` when given, else the
    ``GEODIFF_DASK_RESOURCES`` environment variable (``GPU=1`` or ``GPU=1,MEMORY=4e9``), else
    ``{"GPU": 1}`` when ``options.device`` or a tile function's ``device`` is CUDA, else None (any
    worker). Workers offer them with ``dask worker --resources GPU=1`` or dask-cuda's
    ``LocalCUDACluster`` (one worker per GPU, each seeing its own GPU as ``cuda``).

    Raises:
        ClusterResourceError (ValueError): a malformed ``GEODIFF_DASK_RESOURCES``.
    """
    if options.resources is not None:
        return dict(options.resources) or None
    env = os.environ.get("GEODIFF_DASK_RESOURCES", "").strip()
    if env:
        try:
            return {
                k.strip(): float(v) for k, v in (item.split("=") for item in env.split(",") if item.strip())
            }
        except ValueError:
            raise ClusterResourceError(
                f"GEODIFF_DASK_RESOURCES={env!r} is not NAME=AMOUNT[,NAME=AMOUNT]; e.g. GPU=1"
            ) from None
    return {"GPU": 1} if _on_cuda(options, fns) else None


def _check_resources(client: Any, resources: dict[str, float]) -> None:
    """Refuse a run whose block tasks ask for resources no worker offers (they would wait forever)."""
    workers = client.scheduler_info().get("workers", {})
    fit = [
        w
        for w, info in workers.items()
        if all(info.get("resources", {}).get(k, 0) >= v for k, v in resources.items())
    ]
    if not fit:
        wanted = ",".join(f"{k}={v:g}" for k, v in resources.items())
        raise ClusterResourceError(
            f"the block tasks ask for the dask resources {wanted}, but none of the cluster's {len(workers)} "
            f"worker(s) offers them; start workers with `dask worker --resources {wanted}` (or dask-cuda's "
            "LocalCUDACluster for GPUs), or run on the CPU (--device cpu)"
        )


def _distributed(
    task: Callable[[Block], BlockResult], blocks: list[Block], client: Any, resources: dict | None = None
) -> Iterator[BlockResult]:
    """Submit blocks with a bounded number in flight; yield results as they finish (any order).
    ``resources``: dask resources each block task asks for (e.g. ``{"GPU": 1}``)."""
    from distributed import as_completed

    if resources:
        _check_resources(client, resources)
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    token = uuid.uuid4().hex[:8]
    todo = iter(enumerate(blocks))
    extra = {"resources": resources} if resources else {}

    def submit(i: int, b: Block) -> Any:
        key = f"geodiff-block-{token}-{i}"
        return client.submit(task, b, key=key, pure=False, retries=RETRIES, **extra)

    # the client's own loop: it need not be the default client (Client(..., set_as_default=False))
    queue = as_completed([submit(i, b) for i, b in _take(todo, 2 * n_workers)], loop=client.loop)
    for fut in queue:
        result = fut.result()
        fut.release()
        for i, b in _take(todo, 1):
            queue.add(submit(i, b))
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
    progress: Progress | None = None,
    resources: dict[str, float] | None = None,
    in_flight: int = 1,
) -> tuple[int, int]:
    """Compute every block (in-process, or on ``client``'s cluster) and hand each result to ``sink``.

    Memory on the caller's side is bounded by the number of blocks in flight (twice the workers;
    in-process ``in_flight``, see :func:`blocks_in_flight`). ``resources``: dask resources each block
    task asks for on the cluster (see :func:`block_resources`). Returns (valid output pixels, NaN/inf
    input pixels treated as nodata).

    Raises:
        ClusterResourceError (ValueError): no worker offers ``resources``.
    """
    from tiling.atomic import check_stop

    if client is not None:
        results = _distributed(task, blocks, client, resources)
    else:
        results = _serial(task, blocks) if in_flight <= 1 else _threaded(task, blocks, in_flight)
    n_valid = n_bad = 0
    try:
        for res in results:
            check_stop()  # a scene run outside the main thread (batch) stops when the main one is interrupted
            sink(res)
            n_valid += int(res.valid.sum())
            n_bad += res.nonfinite
            if progress is not None:
                progress.update(1)
    finally:
        results.close()  # blocks not started yet are not started (threads, cluster futures)
    return n_valid, n_bad


def scheduler_address(scheduler: str | None = None) -> str | None:
    """The dask scheduler to connect to, by the usual dask conventions: ``scheduler`` (e.g.
    ``tcp://10.0.0.5:8786`` or a scheduler JSON file's path), else the ``DASK_SCHEDULER_ADDRESS``
    environment variable, else the dask config key ``scheduler-address`` (``~/.config/dask/*.yaml``);
    None when none is set (run in-process or on a LocalCluster)."""
    if scheduler:
        return str(scheduler)
    env = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if env:
        return env
    try:
        import dask

        return dask.config.get("scheduler-address", None) or None
    except ImportError:  # pragma: no cover - dask is a dependency
        return None


@contextlib.contextmanager
def dask_client(
    client: Any = None, workers: int | None = None, scheduler: str | None = None
) -> Iterator[Any]:
    """The dask client a run uses, chosen in this order: the given ``client``; a client connected to
    an existing cluster at ``scheduler`` (see :func:`scheduler_address`: argument, then
    ``DASK_SCHEDULER_ADDRESS``, then the dask config) unless ``workers`` is given; a process-based
    LocalCluster for ``workers > 1`` (its scratch space in a ``geodiff-dask-*`` temporary folder that is
    removed on exit, interrupted or not); else None (in-process). Clients opened here are closed on
    exit; an existing cluster is left running.

    Raises:
        OSError: no scheduler answers at the address (distributed's own timeout and message).
    """
    if client is not None:
        yield client
        return
    address = scheduler_address(scheduler) if scheduler or not workers else None
    if address:
        from distributed import Client

        try:
            if os.path.isfile(address):  # a scheduler file written by `dask scheduler --scheduler-file`
                ctx = Client(scheduler_file=address)
            else:
                ctx = Client(address)
        except OSError as exc:
            raise OSError(
                f"no dask scheduler answers at {address} ({exc}); start one (`dask scheduler`) or fix "
                "--scheduler / DASK_SCHEDULER_ADDRESS / the dask config's scheduler-address"
            ) from exc
        with ctx as remote:
            log.info("dask cluster %s (%d workers)", address, len(remote.scheduler_info().get("workers", {})))
            yield remote
        return
    if not workers or workers <= 1:
        yield None
        return
    import dask
    from distributed import Client, LocalCluster

    quiet = logging.getLogger("distributed")  # its INFO chatter would drown the progress bar
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))
    with contextlib.ExitStack() as restore:
        # the workers' scratch space (spilled data, locks) lives in a folder this run owns and removes,
        # also when it is interrupted (Ctrl-C, SIGTERM), not in dask's shared dask-scratch-space
        scratch = tempfile.mkdtemp(prefix="geodiff-dask-")
        restore.callback(shutil.rmtree, scratch, ignore_errors=True)
        restore.callback(quiet.setLevel, level)
        restore.enter_context(dask.config.set({"temporary-directory": scratch}))
        cluster = restore.enter_context(
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                local_directory=scratch,
            )
        )
        yield restore.enter_context(Client(cluster))


def _block_kwargs(kind: str, options: RunOptions, fill: float) -> dict[str, Any]:
    if kind == "tiles":
        return {"device": options.device, "window": options.window, "fill": fill}
    return {"fill": fill}


def run_array(
    source: Source,
    plan: TilePlan,
    fn: Callable,
    *,
    kind: str = "tiles",
    channels: int | None = None,
    options: RunOptions | None = None,
) -> np.ndarray:
    """Whole-scene result in memory (tests, small scenes): the same blocks as :func:`run_raster`.

    Returns (channels, H, W) float32 (default channels: the function's), NaN where invalid.
    """
    opts = options or RunOptions()
    out: np.ndarray | None = None

    def sink(res: BlockResult) -> None:
        nonlocal out
        if out is None:
            out = np.empty((channels or res.data.shape[0], plan.height, plan.width), np.float32)
        out[(slice(None), *res.block.core.slices)] = res.data

    task = block_function(source, plan, fn, kind, **_block_kwargs(kind, opts, np.nan))
    blocks = list(plan.blocks())
    with (
        dask_client(opts.client, opts.workers) as client,
        reporter(opts.progress, len(blocks), opts.desc) as rep,
    ):
        run_blocks(task, blocks, sink, client=client, progress=rep, resources=block_resources(opts, [fn]),
                   in_flight=blocks_in_flight(opts, [fn]))  # fmt: skip
    assert out is not None
    return out


def _probe(in_path: str) -> Any:
    """The input's RasterMeta (opens it: an unreadable input fails here), warning when not georeferenced."""
    from tiling.sources import RasterSource

    meta = RasterSource(in_path).meta
    if not meta.georeferenced:
        warnings.warn(
            f"{in_path}: has no georeferencing (no CRS/transform or GCPs); processing in pixel coordinates",
            UserWarning,
            stacklevel=3,
        )
    return meta


def run_raster(
    in_path: str,
    out_path: str,
    fn: Callable | list[Callable],
    spec: TileSpec,
    *,
    kind: str = "tiles",
    seed: int = 0,
    output: RasterOutput | None = None,
    options: RunOptions | None = None,
) -> dict:
    """Read ``in_path`` block by block, run ``fn`` through the tile plan and write a COG to ``out_path``.

    ``in_path`` may be a GDAL path string (``/vsizip/...``); ``spec`` is the tile geometry, ``seed`` the
    plan's seed, ``output`` what is written (band groups, planes per band, names, hooks) and
    ``options`` how it runs. The output is float32 with the input's nodata (NaN without one) and its
    georeferencing and metadata, and appears only when complete. Returns a JSON-ready summary: input,
    output, width, height, bands, tiles, blocks, valid_fraction, nonfinite_pixels.

    Raises:
        The :func:`~tiling.raster_io.open_raster` and :func:`~tiling.cog.check_output_path` errors;
        TilePlanError (ValueError): ``spec`` does not fit; TileFunctionError (ValueError): wrong
        function outputs or count; NoValidPixelsError (ValueError): every pixel is nodata or NaN/inf.
    """
    import rasterio

    from tiling.cog import CogWriter, check_output_path
    from tiling.raster_io import GDAL_CACHE_BYTES
    from tiling.sources import RasterSource

    out_spec, opts = output or RasterOutput(), options or RunOptions()
    check_output_path(out_path, out_spec.overwrite, inputs=(in_path,))
    meta = _probe(in_path)
    nodata_override = None
    if out_spec.input_nodata is not None and meta.nodata is None and not meta.uses_masks:
        import dataclasses

        nodata_override = float(out_spec.input_nodata)
        meta = dataclasses.replace(meta, nodata=nodata_override, nodatavals=(nodata_override,) * meta.count)
    plan = TilePlan(meta.height, meta.width, spec, seed)
    groups = [list(g) for g in out_spec.band_groups or [range(1, meta.count + 1)]]
    fns = fn if isinstance(fn, list) else [fn] * len(groups)
    if len(fns) != len(groups):
        raise TileFunctionError(f"got {len(fns)} functions for {len(groups)} band groups; pass one per group")
    blocks = list(plan.blocks())
    resources = block_resources(opts, fns)
    in_flight = blocks_in_flight(opts, fns)
    per_band = out_spec.outputs_per_band
    # each band's own nodata decides its validity (RasterSource); a GeoTIFF holds one nodata value,
    # so bands that declare different ones (-1 and -2) all get NaN: never a silent merge
    out_nodata = meta.nodata
    if meta.mixed_nodata:
        out_nodata = float("nan")
        log.warning(
            "%s: the bands declare different nodata values %s; a GeoTIFF holds one, so the output marks "
            "every band's nodata pixels with NaN",
            in_path,
            ", ".join(str(v) for v in meta.nodatavals),
        )
    journal = None
    if out_spec.resume is not None and len(blocks) * len(groups) > 1:  # one block: nothing to resume
        from tiling.resume import BlockJournal, input_identity

        description = {"input": input_identity(in_path), "params": out_spec.resume, "plan": spec.to_dict(),
                       "seed": seed, "kind": kind, "groups": groups, "outputs_per_band": per_band,
                       "nodata": repr(out_nodata), "size": [meta.height, meta.width]}  # fmt: skip
        journal = BlockJournal(out_path, description)
        from tiling.atomic import check_free_space

        # the saved blocks (float32 pixels + bool validity) sit beside the output until it is complete
        state_bytes = meta.height * meta.width * sum(len(g) for g in groups) * per_band * 5
        check_free_space(journal.folder.parent, state_bytes + 2 * state_bytes * 4 // 5)
    # GDAL's block cache (default 5 % of RAM) would grow with the scene: cap it
    with (
        contextlib.ExitStack() as stack,
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES),
        dask_client(opts.client, opts.workers) as client,
        reporter(opts.progress, len(blocks) * len(groups), opts.desc) as rep,
        CogWriter(
            out_path,
            meta,
            count=meta.count * per_band,
            nodata=out_nodata,
            overwrite=out_spec.overwrite,
            inputs=(in_path,),
            descriptions=None if out_spec.descriptions is None else list(out_spec.descriptions),
            before_cog=out_spec.before_cog,
        ) as writer,
    ):
        if journal is not None:
            stack.enter_context(_resume_state(journal))
        fill = out_nodata if out_nodata is not None else np.nan
        n_valid = n_bad = 0
        for gi, (bands, group_fn) in enumerate(zip(groups, fns, strict=True)):
            source = RasterSource(in_path, bands, nodata=nodata_override)
            task = block_function(source, plan, group_fn, kind, **_block_kwargs(kind, opts, fill))
            out_bands = [b + j * meta.count for j in range(per_band) for b in bands]
            sink = functools.partial(_write_block, writer, out_bands)
            todo = blocks
            if journal is not None:
                todo = []
                for b in blocks:
                    saved = journal.get(gi, b.index, b.core.shape)
                    if saved is None:
                        todo.append(b)
                        continue
                    sink(BlockResult(b, saved.data, saved.valid, saved.nonfinite))
                    n_valid, n_bad = n_valid + int(saved.valid.sum()), n_bad + saved.nonfinite
                    if rep is not None:
                        rep.update(1)
                sink = functools.partial(_write_and_save, sink, journal, gi)
            try:
                nv, nb = run_blocks(task, todo, sink, client=client, progress=rep, resources=resources,
                                    in_flight=in_flight)  # fmt: skip
            finally:
                source.close()
            n_valid, n_bad = n_valid + nv, n_bad + nb
        if n_valid == 0:  # raised inside the writer: nothing appears under the final name
            raise NoValidPixelsError(
                f"{in_path}: every pixel is nodata (nodata={meta.nodata}) or NaN/inf; nothing to "
                "process. Check the input band and its nodata value"
            )
    if n_bad:
        warnings.warn(
            f"{in_path}: {n_bad} NaN/inf pixel(s) were treated as nodata and are nodata in the output",
            UserWarning,
            stacklevel=2,
        )
    if journal is not None:
        journal.discard()  # the output has its final name: the finished blocks are not needed any more
    else:
        from tiling.resume import remove_state

        remove_state(out_path)
    total = meta.height * meta.width * sum(len(g) for g in groups) * per_band
    reused = journal.reused if journal is not None else 0
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
        "blocks_resumed": reused,
        "blocks_computed": len(blocks) * len(groups) - reused,
    }


@contextlib.contextmanager
def _resume_state(journal: Any) -> Iterator[None]:
    """Hold ``journal`` (a :class:`tiling.resume.BlockJournal`) for the run: an interrupted run
    (Ctrl-C, SIGTERM, a lost cluster or file system) keeps its finished blocks for the next run; a
    failure a rerun would repeat (bad input or settings, a full disk) removes them."""
    from tiling.errors import TilingError

    with journal:
        try:
            yield
        except BaseException as exc:
            keep = isinstance(exc, KeyboardInterrupt) or (
                isinstance(exc, OSError) and not isinstance(exc, TilingError)
            )
            if keep and journal.entries:
                log.warning(
                    "%s: %d finished block(s) kept in %s; rerun the same command to continue from them "
                    "(or delete that folder)",
                    journal.out,
                    len(journal.entries),
                    journal.folder,
                )
                journal.close()
            else:
                journal.discard()
            raise


def _write_and_save(sink: Callable[[BlockResult], None], journal: Any, group: int, res: BlockResult) -> None:
    """Sink of a resumable run: write the block, then save it durably for a rerun."""
    sink(res)
    journal.add(group, res.block.index, res.data, res.valid, res.nonfinite)


def _write_block(writer: Any, out_bands: list[int], res: BlockResult) -> None:
    """Sink of :func:`run_raster`: a block's planes into their output bands."""
    writer.write(res.data, res.block.core, out_bands[: res.data.shape[0]], valid=res.valid)
