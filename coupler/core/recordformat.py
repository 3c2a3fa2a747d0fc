"""Record format v2: what the recorder writes and the replay reader checks (``docs/replay.md``).

One Zarr v3 group per session (rank), at any fsspec URL:

- ``time(time)`` int64 seconds since the start (the row index *is* the step index), and the
  grid ``lat(cell)``, ``lon(cell)`` (+ ``areacella``, ``sftlf`` % when known) with CF attributes.
- one array ``(cell, time)`` per exchanged field (forcing in, reply out, ``<name>_spread``;
  name collisions prefixed ``in_``/``out_``), with the registry's CF attributes and
  ``landcoupler_role`` (forcing/output), ``landcoupler_codec``, ``landcoupler_wire_dtype`` (the
  dtype the field is stored in: forcing float32 when it came as float32 on the wire, float64
  otherwise; outputs float64; records before this attribute are all float64) and, for
  bit-rounded fields,
  ``keepbits`` and ``max_relative_error`` = 2**-(keepbits+1). Cells first, so that each cell's
  time series is contiguous inside a chunk: that is what the lossless ``pcodec`` exploits.
  Chunks are all cells x ``chunk_steps`` (>= ``chunk_bytes``), shards ``shard_chunks`` chunks.
- ``assim_<name>(time)`` analysis diagnostics (sessions with assimilation).
- ``starts/<index>``: uint8 arrays, each a session checkpoint (``coupler.core.checkpoint``: spec
  with exact arrays, backend identity, land state, assimilation state) at the step where the
  session (re)started recording, so a replay needs nothing but the record.
- group attributes: ``record_format`` / ``record_version`` (this module's FORMAT, VERSION),
  ``session_config`` (JSON), ``record_options``, ``backend`` (identity with artifact hashes),
  ``run_id``, ``rank``, ``code_version``, ``library_versions``, ``created``, ``history``,
  ``chunk_steps``, ``shard_steps``, ``arrays`` (every array written so far),
  ``steps_complete`` (rows committed: every array holds them), ``closed`` and
  ``torch_num_threads`` (torch's intra-op threads when the record was created: the emulators'
  float32 results depend on it, so a bitwise replay uses the same count),
  ``observation_batches`` (rows of the observation table committed; absent: 0).
- ``observations/`` (optional; absent means no Assimilate request was accepted): every accepted
  Assimilate request as a CF contiguous ragged table, zstd (lossless), written with the step chunk
  it precedes (:mod:`coupler.core.recordobs`). Along ``batch`` (one row per batch of a request, in
  the order they were accepted): ``step`` int64, the step index before which the request was
  queued (its observations are analysed at the start of that step); ``request`` int64, the
  request's serial number: the session's count of requests accepted before it (its batches share
  it; checkpoints carry the count as ``requests``, so a replay from ``starts/<k>`` re-sends only
  the serials that start state does not hold); ``type`` int8 with
  ``flag_values``/``flag_meanings`` (the observable registry names); ``units`` int8, an index into
  its attribute ``unit_strings`` (the units the sender stated, "" for none); ``count`` int64
  (``sample_dimension: obs``), the batch's observations. Along ``obs`` (the batches' observations
  one after the other): ``value``, ``error`` (standard deviation, the type's units), ``lat``,
  ``lon`` float64 and ``time`` int64 seconds since 1970-01-01 (window start or overpass), exactly
  as the session checked them (``coupler.spec.observations.Parsed``). A reader uses the first
  ``observation_batches`` rows and the first sum(``count``) observations.
- ``land_cover_changes/<index>`` (optional): the (cell, 8) float64 land-cover fractions a session
  took before step ``index`` (``UpdateLandCover``), zstd; the group attribute
  ``land_cover_changes`` lists the indices. Replay applies them before the same steps.

A v1 record (written before this format) has the title but no ``record_format``.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any, Literal

import numpy as np
import torch
import zarr
from zarr.codecs import BloscCodec, ZstdCodec
from zarr.codecs.numcodecs import BitRound, PCodec
from zarr.errors import ZarrUserWarning

from coupler.core import provenance
from coupler.spec import RecordOptions, SessionSpec
from coupler.spec.codecs import MANTISSA_BITS, CodecSpec, max_relative_error
from emulators import variables as V

FORMAT = "landcoupler-record"
VERSION = 2
TITLE = "landcoupler session record"
STARTS = "starts"
#: prefix of the per-step scalar (time,) arrays of assimilation diagnostics
ANALYSIS_PREFIX = "assim_"
#: the optional observation table (accepted Assimilate requests) and its arrays
OBSERVATIONS = "observations"
OBS_BATCHES = "observation_batches"
#: the session's land-cover changes (``Session.update_cover``): the attribute lists the step
#: indices before which the cover changed, the group holds the new (cell, 8) fractions
#: ``land_cover_changes/<index>``
COVER_CHANGES = "land_cover_changes"
BATCH_ARRAYS: dict[str, str] = {"step": "i8", "request": "i8", "type": "i1", "units": "i1",
                                "count": "i8"}  # fmt: skip
OBS_ARRAYS: dict[str, str] = {"value": "f8", "error": "f8", "lat": "f8", "lon": "f8",
                              "time": "i8"}  # fmt: skip
OBS_TIME_UNITS = "seconds since 1970-01-01T00:00:00"
#: zarr warns about every numcodecs codec in v3 metadata (not in the v3 specification); the
#: record uses them on purpose (BitRound, PCodec), so the warning is silenced here, once.
warnings.filterwarnings(
    "ignore", message="Numcodecs codecs are not in the Zarr version 3", category=ZarrUserWarning
)

_SHUFFLE: dict[int, Literal["noshuffle", "shuffle", "bitshuffle"]] = {
    -1: "shuffle", 0: "noshuffle", 1: "shuffle", 2: "bitshuffle"
}  # fmt: skip


def variable_names(inputs: tuple[str, ...], outputs: tuple[str, ...]) -> dict[str, str]:
    """Map ``in:<name>`` / ``out:<name>`` to the stored variable name, prefixing collisions."""
    clash = set(inputs) & set(outputs)
    names = {f"in:{n}": (f"in_{n}" if n in clash else n) for n in inputs}
    names.update({f"out:{n}": (f"out_{n}" if n in clash else n) for n in outputs})
    return names


def zarr_codecs(spec: CodecSpec, itemsize: int = 8) -> dict[str, Any]:
    """``create_array`` keyword arguments (filters, serializer, compressors) of a codec."""
    kwargs: dict[str, Any] = {"filters": None, "compressors": None}
    if spec.keepbits and spec.keepbits < MANTISSA_BITS[f"f{itemsize}"]:
        kwargs["filters"] = [BitRound(keepbits=spec.keepbits)]
    cfg = dict(spec.config)
    if spec.id == "pcodec":
        kwargs["serializer"] = PCodec(**cfg)
    elif spec.id == "zstd":
        kwargs["compressors"] = [ZstdCodec(**cfg)]
    elif spec.id == "blosc":
        kwargs["compressors"] = [
            BloscCodec(
                cname=cfg.get("cname", "lz4"),
                clevel=cfg.get("clevel", 5),
                shuffle=_SHUFFLE[cfg.get("shuffle", 1)],
                typesize=cfg.get("typesize", itemsize),
                blocksize=cfg.get("blocksize", 0),
            )
        ]
    return kwargs


def codec_attrs(spec: CodecSpec) -> dict[str, Any]:
    """The array attributes that state a field's codec and, when lossy, its error bound."""
    attrs: dict[str, Any] = {"landcoupler_codec": spec.to_dict()}
    if spec.keepbits:
        attrs["keepbits"] = spec.keepbits
        attrs["max_relative_error"] = max_relative_error(spec.keepbits)
    return attrs


def stored_dtype(dtype: Any) -> np.dtype:
    """The dtype a forcing field received in ``dtype`` is recorded in: float32 stays float32
    (exactly), anything else is float64 (the session's checked dtype)."""
    dt = np.dtype(dtype)
    return np.dtype(np.float32) if dt.kind == "f" and dt.itemsize == 4 else np.dtype(np.float64)


def chunk_steps(n_cells: int, chunk_bytes: int, step_bytes: int, max_buffer_bytes: int) -> int:
    """Steps per time chunk: enough for ``chunk_bytes`` of one field's cells, at most what
    ``max_buffer_bytes`` can buffer for all fields (``step_bytes`` per step)."""
    want = max(1, math.ceil(chunk_bytes / (8 * max(n_cells, 1))))
    return max(1, min(want, max_buffer_bytes // max(step_bytes, 1)))


def field_attrs(name: str) -> dict[str, Any]:
    """CF attributes of stored field ``name`` (a registry name or ``<name>_spread``)."""
    base = name[: -len("_spread")] if name.endswith("_spread") else name
    var = V.REGISTRY.get(base)
    attrs: dict[str, Any] = var.cf_attrs() if var is not None else {}
    if name != base:
        attrs.pop("standard_name", None)
        attrs.pop("valid_min", None)
        attrs.pop("valid_max", None)
        attrs["long_name"] = f"{attrs.get('long_name', base)} (ensemble spread, std. dev.)"
        attrs["cell_methods"] = "realization: standard_deviation"
    elif var is not None and var.direction is not V.Direction.TO_LAND:
        attrs["cell_methods"] = "realization: mean"
    attrs["landcoupler_role"] = (
        "forcing" if var is not None and var.direction is V.Direction.TO_LAND else "output"
    )
    return attrs


def new_record(
    group: zarr.Group,
    cfg: SessionSpec,
    options: RecordOptions,
    backend: dict[str, Any],
    chunk: int,
    start_index: int,
    now: str,
) -> zarr.Array:
    """Write a new record's attributes, grid and (empty) ``time`` into ``group``; returns
    ``time``."""
    created = f"{now}: created by {provenance.code_version()}"
    if start_index > 0:
        created += f", resumed at step {start_index} without the earlier record"
    group.attrs.update({
        "Conventions": "CF-1.10",
        "title": TITLE,
        "record_format": FORMAT,
        "record_version": VERSION,
        "session_config": cfg.to_json(include_arrays=False),
        "record_options": json.dumps(options.to_dict(), sort_keys=True),
        "backend": json.dumps(backend, sort_keys=True),
        "run_id": cfg.run_id,
        "rank": cfg.rank,
        "code_version": provenance.code_version(),
        "library_versions": json.dumps(provenance.library_versions(), sort_keys=True),
        "created": now,
        "chunk_steps": chunk,
        "shard_steps": chunk * options.shard_chunks,
        "grid_shape": list(cfg.grid.shape) if cfg.grid.shape else [],
        "history": created,
        "arrays": [],
        "steps_complete": start_index,
        "closed": False,
        # the land step's float results depend on torch's intra-op thread count (reductions and
        # GEMM blocking): a bitwise replay runs with the same count
        "torch_num_threads": torch.get_num_threads(),
    })  # fmt: skip
    time = group.create_array(
        "time", shape=(0,), chunks=(chunk * options.shard_chunks,), dtype="i8",
        dimension_names=["time"], fill_value=-1,
        attributes={"units": f"seconds since {cfg.start}", "calendar": "proleptic_gregorian",
                    "standard_name": "time", "long_name": "start of the step (UTC)"},
    )  # fmt: skip
    statics: dict[str, np.ndarray | None] = {
        "lat": cfg.grid.lat, "lon": cfg.grid.lon, "areacella": cfg.grid.area,
        "sftlf": None if cfg.grid.land_fraction is None else cfg.grid.land_fraction * 100.0,
    }  # fmt: skip
    n = cfg.n_cells
    for name, values in statics.items():
        if values is None:
            continue
        arr = group.create_array(
            name, shape=(n,), chunks=(n,), dtype="f8",
            dimension_names=["cell"], attributes=V.get(name).cf_attrs(),
        )  # fmt: skip
        arr[:] = values
    return time


def create_field(
    group: zarr.Group,
    name: str,
    registry_name: str,
    options: RecordOptions,
    shape: tuple[int, int],
    chunks: tuple[int, int],
    coordinates: str,
    dtype: np.dtype | None = None,
) -> zarr.Array:
    """A new (cell, time) field array, or a (time,) ``assim_*`` diagnostic, of ``shape`` (cells,
    steps so far); ``chunks`` (cells, steps) per chunk; ``coordinates`` its CF attribute;
    ``dtype`` float64 (default) or float32 (forcing received as float32)."""
    shard = chunks[1] * options.shard_chunks
    if name.startswith(ANALYSIS_PREFIX):
        return group.create_array(
            name, shape=(shape[1],), chunks=(shard,), dtype="f8", fill_value=np.nan,
            dimension_names=["time"],
            attributes={"long_name": f"assimilation diagnostic {name[len(ANALYSIS_PREFIX):]}"
                        " of the analysis at the start of the step",
                        "landcoupler_role": "analysis"},
        )  # fmt: skip
    codec = options.codec_for(registry_name)
    dt = np.dtype(np.float64) if dtype is None else stored_dtype(dtype)
    attrs = field_attrs(registry_name) | codec_attrs(codec)
    attrs["landcoupler_wire_dtype"] = dt.name
    attrs["coordinates"] = coordinates
    if "areacella" in coordinates:
        attrs["cell_measures"] = "area: areacella"
    return group.create_array(
        name, shape=shape, chunks=chunks, shards=(chunks[0], shard), dtype=dt,
        fill_value=np.nan, dimension_names=["cell", "time"], attributes=attrs,
        **zarr_codecs(codec, dt.itemsize),
    )  # fmt: skip


def array(group: zarr.Group, name: str) -> zarr.Array:
    """The array ``name`` of ``group`` (TypeError for a group)."""
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise TypeError(f"{name!r} in the record is a group, expected an array")
    return node


def store_start(group: zarr.Group, index: int, blob: bytes) -> None:
    """A session checkpoint at step ``index`` as ``starts/<index>`` (uint8, zstd)."""
    starts = group.require_group(STARTS)
    data = np.frombuffer(blob, dtype=np.uint8)
    arr = starts.create_array(
        str(index), shape=data.shape, chunks=(max(1, min(data.size, 16 << 20)),),
        dtype="u1", compressors=[ZstdCodec(level=3)], overwrite=True,
        attributes={"long_name": f"session checkpoint at step {index}",
                    "format": "landcoupler-checkpoint (coupler.core.checkpoint)"},
    )  # fmt: skip
    arr[:] = data


def store_cover(group: zarr.Group, index: int, fractions: np.ndarray) -> None:
    """New land-cover fractions from step ``index`` on as ``land_cover_changes/<index>``
    ((cell, 8) float64, zstd) and ``index`` in the attribute of the same name."""
    node = group.require_group(COVER_CHANGES)
    data = np.ascontiguousarray(fractions, dtype=np.float64)
    arr = node.create_array(
        str(index), shape=data.shape, chunks=data.shape, dtype="f8",
        compressors=[ZstdCodec(level=3)], overwrite=True,
        attributes={"long_name": f"land-cover fractions from step {index} on", "units": "1"},
    )  # fmt: skip
    arr[:] = data
    indices: Any = group.attrs.get(COVER_CHANGES) or []
    group.attrs.update({COVER_CHANGES: sorted({*indices, int(index)})})
