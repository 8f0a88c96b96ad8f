"""The batch job: many scenes through the despeckle or fuse app, on a dask cluster, resumable.

Inputs (paths, globs, folders, ``.txt``/``.csv`` lists; fuse: ``optical,sar`` pairs) become
:class:`Scene` s, each written to ``out_dir`` under a name made from its input. Every scene runs
through the same app as a single run (:func:`~geodiff.apps.despeckle.despeckle_scene`,
:func:`~geodiff.apps.fuse.scene.fuse_scene`) with the batch's client, so its output is bit-identical
to ``geodiff despeckle IN OUT`` with the same options: the blocks of one scene go to the cluster
(:func:`tiling.runner.run_blocks`, bounded in flight, ``retries`` on every block; a lost worker's
blocks are rescheduled by the scheduler) and the client writes the COG atomically.

The run manifest (``out_dir/geodiff-batch.jsonl``, JSON Lines, one record per scene and attempt,
appended under an exclusive lock and fsynced) holds each scene's input identity (path, size,
mtime), the parameters and their hash, the status, the output's size and SHA-256, timings and QA.
A rerun skips every scene whose latest record is done with the same input identity and parameters
and whose output is still there with the recorded size; it redoes scenes whose input or parameters
changed, scenes that failed and scenes that were interrupted (an ``interrupted`` record after Ctrl-C or
SIGTERM, a ``running`` record with no end after SIGKILL); an
interrupted scene continues from the blocks it finished (:mod:`tiling.resume`), and its record says
how many (``blocks_resumed``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import glob
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geodiff.errors import InvalidSettingError, OutputFolderError, exit_code

log = logging.getLogger(__name__)

__all__ = ["JOBS", "MANIFEST", "Manifest", "Scene", "expand_inputs", "params_hash", "run_batch"]

#: the batch's jobs
JOBS = ("despeckle", "fuse")
#: the run manifest's file name in the output folder
MANIFEST = "geodiff-batch.jsonl"
#: default output name: the (first) input's stem as a GeoTIFF
DEFAULT_NAME = "{stem}.tif"
_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Scene:
    """One unit of a batch: ``inputs`` (one path to despeckle, or (optical, sar) to fuse) and the
    output file ``name`` inside the batch's folder."""

    name: str
    inputs: tuple[str, ...]


# ---- inputs -------------------------------------------------------------------------------------
def _list_file(path: Path) -> list[list[str]]:
    """Rows of a .txt/.csv list: one path (despeckle) or ``optical,sar`` per line; blank lines, ``#``
    comments and a header row (``optical,sar`` / ``path``) are skipped; relative paths are taken
    from the list's folder."""
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.replace(";", ",").split(",") if c.strip()]
        if not rows and all(c.lower() in ("path", "input", "optical", "sar", "in") for c in cells):
            continue
        rows.append([c if os.path.isabs(c) or c.startswith("/vsi") else str(path.parent / c) for c in cells])
    return rows


def _expand_one(item: str) -> list[list[str]]:
    p = Path(item)
    if p.is_file() and p.suffix.lower() in (".txt", ".csv"):
        return _list_file(p)
    if p.is_dir():
        found = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in _RASTER_SUFFIXES)
        if not found:
            raise InvalidSettingError(
                f"folder {item} holds no raster (.tif/.tiff/.vrt); pass files or a glob"
            )
        return [[f] for f in found]
    if "," in item:
        return [[c.strip() for c in item.split(",")]]
    if _GLOB_CHARS & set(item) and not p.exists():
        found = sorted(glob.glob(item, recursive=True))
        if not found:
            raise InvalidSettingError(f"no file matches {item!r}; check the pattern (quote it for the shell)")
        return [[f] for f in found]
    return [[item]]  # a path, existing or not: a missing one is recorded as a failed scene


def expand_inputs(inputs: Sequence[str], job: str = "despeckle", name: str = DEFAULT_NAME) -> list[Scene]:
    """The scenes of a batch, in the order given (folders and globs sorted), duplicates dropped.

    ``inputs``: paths, globs, folders (their rasters), ``.txt``/``.csv`` lists, and for ``fuse``
    ``optical,sar`` pairs (on the command line or one per list row). ``name``: the output file name
    template, with ``{stem}`` and ``{name}`` of the (optical) input and ``{index}`` (0-based).

    Raises:
        InvalidSettingError (ValueError): unknown job, nothing to do, a glob matching nothing, a row
        that is not a pair for fuse (or one for despeckle), two scenes with the same output name.
    """
    if job not in JOBS:
        raise InvalidSettingError(f"unknown batch job {job!r}; use one of {', '.join(JOBS)}")
    width = 2 if job == "fuse" else 1
    rows: list[tuple[str, ...]] = []
    for item in inputs:
        for row in _expand_one(str(item)):
            if len(row) != width:
                what = "an optical,sar pair" if job == "fuse" else "one path"
                raise InvalidSettingError(f"{item}: row {','.join(row)!r} is not {what} (job {job})")
            if tuple(row) not in rows:
                rows.append(tuple(row))
    if not rows:
        raise InvalidSettingError("no input scenes; pass paths, globs, folders or a .txt/.csv list")
    scenes, seen = [], {}
    for i, row in enumerate(rows):
        first = Path(row[0].rstrip("/"))
        try:
            out = name.format(stem=first.stem, name=first.name, index=i)
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidSettingError(
                f"bad --name template {name!r}: {exc}; use {{stem}}, {{name}}, {{index}}"
            ) from None
        if out in seen:
            raise InvalidSettingError(
                f"{row[0]} and {seen[out]} would both be written to {out}; "
                "use --name '{stem}_{index}.tif'"
            )
        seen[out] = row[0]
        scenes.append(Scene(out, row))
    return scenes


# ---- identity, parameters -------------------------------------------------------------------------
def input_identity(path: str) -> dict[str, Any]:
    """Identity of an input file: absolute path, size (bytes) and mtime (ns); a GDAL path string or
    a missing file: its path only."""
    try:
        st = os.stat(path)
    except OSError:
        return {"path": str(path)}
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def params_hash(job: str, params: dict[str, Any]) -> str:
    """SHA-256 (16 hex digits) of the job and its parameters (sorted JSON): equal hashes, equal outputs."""
    text = json.dumps({"job": job, **params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """SHA-256 hex digest of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---- manifest -------------------------------------------------------------------------------------
class Manifest:
    """The JSON Lines run manifest of an output folder: one record per scene and attempt.

    Appends are one ``write`` of one line under an exclusive ``flock``, then ``fsync``: a killed
    process leaves at most a truncated last line, which reading skips.
    """

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.path = Path(out_dir) / MANIFEST

    def records(self) -> list[dict[str, Any]]:
        """Every readable record, oldest first."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s: skipping a truncated line", self.path)
        return out

    def latest(self) -> dict[str, dict[str, Any]]:
        """The latest record of every scene (by output name)."""
        return {r["scene"]: r for r in self.records() if "scene" in r}

    def append(self, record: dict[str, Any]) -> None:
        """Append one record (atomically, durably)."""
        import fcntl

        line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def _up_to_date(prev: dict[str, Any] | None, identity: list[dict], phash: str, out_path: Path) -> bool:
    if not prev or prev.get("status") not in ("done", "skipped"):
        return False
    if prev.get("inputs") != identity or prev.get("params_hash") != phash:
        return False
    return out_path.is_file() and out_path.stat().st_size == prev.get("output_size")


# ---- cluster checks -------------------------------------------------------------------------------
def _visible(paths: list[str]) -> list[bool]:
    return [os.path.exists(p) for p in paths]


def unseen_inputs(client: Any, paths: list[str]) -> dict[str, list[str]]:
    """{input path: [worker addresses that cannot see it]} for inputs the workers cannot read (the
    workers read the inputs; the client writes the outputs). Empty in-process."""
    if client is None or not paths:
        return {}
    missing: dict[str, list[str]] = {}
    for worker, seen in client.run(_visible, paths).items():
        for p, ok in zip(paths, seen, strict=True):
            if not ok:
                missing.setdefault(p, []).append(worker)
    return missing


def _write_probe(folder: str, token: str, dask_worker: Any = None) -> str:
    """On a worker: write a probe file named after ``token`` and the worker into ``folder``; returns
    its name, or ``"!"`` and the error when it cannot be written."""
    address = getattr(dask_worker, "address", "") or str(os.getpid())
    name = f".geodiff-probe-{token}-{hashlib.sha256(address.encode()).hexdigest()[:12]}"
    try:
        with open(os.path.join(folder, name), "w") as f:
            f.write(address)
    except OSError as exc:
        return f"!{exc.strerror or exc}"
    return name


def unseen_output(client: Any, folder: str | os.PathLike) -> dict[str, str]:
    """{worker address: why} for the workers that do not see the output ``folder`` as the client does:
    each worker writes a probe file there and the client reads it back (then removes it). Empty
    in-process."""
    if client is None:
        return {}
    token = uuid.uuid4().hex[:12]
    unseen: dict[str, str] = {}
    for worker, name in client.run(_write_probe, str(folder), token).items():
        if name.startswith("!"):
            unseen[worker] = f"cannot write there ({name[1:]})"
            continue
        probe = Path(folder) / name
        try:
            ok = probe.read_text() == worker
        except OSError:
            ok = False
        if not ok:
            unseen[worker] = "its probe file does not appear here"
        with contextlib.suppress(OSError):
            probe.unlink()
    return unseen


def cluster_info(client: Any) -> dict[str, Any]:
    """Scheduler address, worker count and dashboard link of ``client`` ({"mode": "in-process"} for None)."""
    if client is None:
        return {"mode": "in-process"}
    info = client.scheduler_info()
    out = {"mode": "dask", "scheduler": client.scheduler.address, "workers": len(info.get("workers", {}))}
    with contextlib.suppress(Exception):
        if client.dashboard_link and info.get("services", {}).get("dashboard"):
            out["dashboard"] = client.dashboard_link
    return out


# ---- running --------------------------------------------------------------------------------------
def _owned(out_path: Path, owned: set[tuple[str, Any]]) -> bool:
    """Whether ``out_path`` is an output a done record of the manifest wrote (same path and size):
    only those are replaced without ``overwrite``."""
    return out_path.is_file() and (str(out_path), out_path.stat().st_size) in owned


def _run_scene(
    job: str, scene: Scene, out_path: Path, params: dict, client: Any, overwrite: bool, progress: Any
) -> dict:
    if job == "despeckle":
        from geodiff.apps.despeckle import despeckle_scene

        return despeckle_scene(
            scene.inputs[0], out_path, client=client, overwrite=overwrite, progress=progress, **params
        )
    from geodiff.apps.fuse.scene import fuse_scene

    return fuse_scene(*scene.inputs, out_path, overwrite=overwrite, progress=progress, **params)


#: despeckle options only samplers take (dropped for classical filters, as `geodiff despeckle` does)
_SAMPLER_OPTIONS = ("prior", "steps", "samples", "device", "max_batch", "estimator")


def _check_params(job: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters every scene gets; fails before any scene on a method or setting every scene
    would reject (UnknownMethodError, InvalidSettingError: ValueError)."""
    if job == "despeckle":
        from geodiff.apps.despeckle import get

        if get(params.get("method") or "sar-dps").kind == "array":
            return {k: v for k, v in params.items() if k not in _SAMPLER_OPTIONS}
        from geodiff.apps.despeckle.sar_dps import check_estimator

        check_estimator(params)
        return params
    from geodiff.apps.fuse.config import FusionConfig

    FusionConfig.of(None, **params)
    return params


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def run_batch(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    job: str = "despeckle",
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    client: Any = None,
    name: str = DEFAULT_NAME,
    overwrite: bool = False,
    force: bool = False,
    scenes_in_flight: int | None = None,
    progress: Any = False,
    on_scene: Callable[[int, int, dict], None] | None = None,
    on_start: Callable[[dict], None] | None = None,
    **params: Any,
) -> list[dict[str, Any]]:
    """Run ``job`` on every scene of ``inputs`` into ``out_dir``; return one record per scene.

    ``params`` are the job's options for every scene (despeckle: method, looks, units, sensor,
    window, tile, overlap, seed, uncertainty, prior, steps, samples, device, max_batch; fuse: the
    :class:`~geodiff.apps.fuse.config.FusionConfig` fields). Where it runs: ``client``, else an
    existing cluster at ``scheduler`` (or ``DASK_SCHEDULER_ADDRESS`` / dask config), else a
    LocalCluster of ``workers``, else in-process (:func:`tiling.runner.dask_client`); the fuse job
    runs in-process on the client. ``overwrite`` replaces outputs the manifest does not know;
    ``force`` recomputes scenes that are up to date. ``scenes_in_flight``: scenes processed at the
    same time (threads of the client sharing its cluster; default 1 in-process, else the worker count,
    at least 2); outputs do not depend on it. ``on_scene(i, n, record)`` is called as each finishes
    (``i`` counts finished scenes); ``on_start(info)`` once connected (the :func:`cluster_info` and
    the scene count); the records come back in input order.

    A record: scene, inputs (identities), output, status ("done", "skipped", "failed"), error and
    exit_code (failed), params_hash, params, output_size and output_sha256, seconds, started,
    finished, qa, width, height, bands, run_id, cluster. The manifest gets the same records.

    Raises:
        InvalidSettingError (ValueError): bad inputs or job (see :func:`expand_inputs`), both
        ``scheduler`` and ``workers``. OSError: no scheduler at the address; ``out_dir`` not writable.
        OutputFolderError (FileNotFoundError): a dask worker does not see ``out_dir`` (its probe
        file does not appear on the client's side).
        Errors of single scenes do not raise: they are recorded.
    """
    from tiling.runner import dask_client

    if scheduler and workers:
        raise InvalidSettingError("pass either --scheduler (an existing cluster) or --workers (a local one)")
    scenes = expand_inputs([str(i) for i in inputs], job, name)
    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out)
    params = _check_params(job, {k: v for k, v in params.items() if v is not None})
    phash = params_hash(job, params)
    run_id = uuid.uuid4().hex[:12]
    history = manifest.records()
    latest = {r["scene"]: r for r in history if "scene" in r}
    owned = {(r["output"], r.get("output_size")) for r in history if r.get("status") == "done"}
    with dask_client(client, workers, scheduler) as cl:
        where = cluster_info(cl)
        if "dashboard" in where:
            log.info("dask dashboard: %s", where["dashboard"])
        if on_start is not None:
            on_start({**where, "scenes": len(scenes)})
        unseen = unseen_inputs(cl, [p for s in scenes for p in s.inputs if os.path.exists(p)])
        blind = unseen_output(cl, out)
        if blind:
            worker, why = next(iter(blind.items()))
            raise OutputFolderError(
                f"{out}: the output folder is not shared with {len(blind)} of the cluster's dask workers "
                f"({worker}: {why}); put --out on a filesystem every worker mounts at the same path "
                "(like the inputs), or run without --scheduler"
            )
        in_flight = scenes_in_flight or (1 if cl is None else max(2, where["workers"]))
        records: list[dict[str, Any]] = [{}] * len(scenes)

        def one(i: int) -> dict[str, Any]:
            scene = scenes[i]
            replace = overwrite or _owned(out / scene.name, owned)
            rec = _scene(job, scene, out, params, phash, latest.get(scene.name), cl, unseen, replace, force,
                         progress, manifest, run_id)  # fmt: skip
            rec["cluster"] = where
            return rec

        # several scenes in flight keep every worker busy (a small scene is one block) and overlap the
        # client's share of a scene (facts, COG, QA) with the workers' blocks of the others
        pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="geodiff-scene")
        try:
            pending = {pool.submit(one, i): i for i in range(len(scenes))}
            for n, fut in enumerate(as_completed(pending)):
                records[pending[fut]] = rec = fut.result()
                if on_scene is not None:
                    on_scene(n, len(scenes), rec)
        except BaseException:  # Ctrl-C or a bug: start no further scene (those running finish)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
    return records


def _scene(
    job: str, scene: Scene, out: Path, params: dict, phash: str, prev: dict | None, client: Any,
    unseen: dict, replace: bool, force: bool, progress: Any, manifest: Manifest, run_id: str,
) -> dict:  # fmt: skip
    out_path = out / scene.name
    identity = [input_identity(p) for p in scene.inputs]
    base = {
        "scene": scene.name,
        "job": job,
        "inputs": identity,
        "output": str(out_path),
        "params_hash": phash,
        "params": params,
        "run_id": run_id,
    }
    if not force and _up_to_date(prev, identity, phash, out_path):
        assert prev is not None
        keep = ("output_size", "output_sha256", "qa", "width", "height", "bands", "seconds_computed")
        rec = {**base, **{k: prev[k] for k in keep if k in prev}, "status": "skipped", "seconds": 0.0}
        rec.setdefault("seconds_computed", prev.get("seconds"))
        rec["started"] = rec["finished"] = _now()
        manifest.append(rec)
        return rec
    started, t0 = _now(), time.perf_counter()
    manifest.append({**base, "status": "running", "started": started})
    try:
        hidden = [p for p in scene.inputs if p in unseen]
        if hidden:
            raise FileNotFoundError(
                f"{hidden[0]}: the dask workers {', '.join(unseen[hidden[0]])} cannot see this input; "
                "workers read the inputs: put them on a filesystem every worker mounts at the same path"
            )
        summary = _run_scene(job, scene, out_path, params, client, replace, progress)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the scene continues from its blocks next time
        seconds = round(time.perf_counter() - t0, 3)
        rec = {**base, "status": "interrupted", "error": str(exc) or "interrupted", "seconds": seconds}
        manifest.append({**rec, "started": started, "finished": _now()})
        raise
    except Exception as exc:  # noqa: BLE001 - a failed scene is recorded and the batch goes on
        log.info("%s: failed: %s: %s", scene.name, type(exc).__name__, exc)
        rec = {
            **base,
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "exit_code": exit_code(exc),
            "seconds": round(time.perf_counter() - t0, 3),
            "started": started,
            "finished": _now(),
        }
        manifest.append(rec)
        return rec
    seconds = round(time.perf_counter() - t0, 3)
    rec = {
        **base,
        "status": "done",
        "seconds": seconds,
        "seconds_computed": seconds,
        "started": started,
        "finished": _now(),
        "output_size": out_path.stat().st_size,
        "output_sha256": file_sha256(out_path),
        **{k: summary[k] for k in _SUMMARY_KEYS if k in summary},
    }
    manifest.append(rec)
    return rec


#: what a done record keeps of the scene's summary (blocks_resumed: blocks an interrupted attempt finished)
_SUMMARY_KEYS = (
    "width",
    "height",
    "bands",
    "qa",
    "units",
    "looks",
    "blocks",
    "blocks_resumed",
    "blocks_computed",
)


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts by status, seconds and megapixels computed over a batch's records."""
    counts = {s: sum(r["status"] == s for r in records) for s in ("done", "skipped", "failed")}
    mpx = sum(r.get("width", 0) * r.get("height", 0) for r in records if r["status"] == "done") / 1e6
    return {"scenes": len(records), **counts, "seconds": round(sum(r.get("seconds", 0) for r in records), 3),
            "megapixels_computed": round(mpx, 3)}  # fmt: skip


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of a batch: scene, status, seconds, size, error."""
    rows = [("scene", "status", "seconds", "size", "error")]
    for r in records:
        size = f"{r['width']}x{r['height']}" if "width" in r else ""
        rows.append((r["scene"], r["status"], f"{r.get('seconds', 0):.2f}", size, r.get("error", "")[:80]))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True))
        + ("  " + row[4] if row[4] else "")
        for row in rows
    )


def iter_done(records: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The records of scenes with an output (done or skipped)."""
    return (r for r in records if r["status"] in ("done", "skipped"))
