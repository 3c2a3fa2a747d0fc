"""SessionSpec <-> OpenSessionRequest: the one place a session's spec meets the proto.

The gRPC client writes a request with :func:`to_request` (from a spec it has validated, so a bad
spec is refused before anything is sent, exactly as the server would refuse it), and the
servicer reads it back with :func:`from_request`, which validates again (a request may come from
any client, the C/Fortran one included). No torch, no core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import json_format

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.assimilation import configio
from coupler.assimilation.settings import AssimilationConfig
from coupler.errors import InvalidArgument
from coupler.spec import RecordOptions, SessionSpec
from coupler.spec.codecs import CODECS as RECORD_CODECS
from coupler.spec.times import format_time
from coupler.wire import fields as F


def to_request(spec: SessionSpec) -> pb.OpenSessionRequest:
    """The OpenSessionRequest of ``spec`` (start as RFC 3339, arrays as float64 fields)."""
    req = pb.OpenSessionRequest(
        outputs=list(spec.outputs), backend=spec.backend, run_id=spec.run_id, rank=spec.rank,
        members=spec.members, output_spread=spec.output_spread, timestep=spec.timestep,
        checkpoint_url=spec.checkpoint_url or "", checkpoint_every=spec.checkpoint_every,
        record_url=spec.record_url or "", start_rfc3339=format_time(spec.start),
        freeze_vegetation_year=spec.freeze_vegetation_year or 0,
        parameters_url=spec.parameters_url or "",
        height_wind=spec.height_wind, height_temperature=spec.height_temperature,
    )  # fmt: skip
    grid = spec.grid
    F.encode_into(req.lat, "lat", grid.lat, "degrees_north")
    F.encode_into(req.lon, "lon", grid.lon, "degrees_east")
    if grid.area is not None:
        F.encode_into(req.area, "area", grid.area, "m2")
    if grid.land_fraction is not None:
        F.encode_into(req.land_fraction, "land_fraction", grid.land_fraction, "1")
    if grid.shape is not None:
        req.grid_shape[:] = list(grid.shape)
    if isinstance(spec.land_cover, str):
        req.land_cover_name = spec.land_cover
    else:
        F.encode_into(req.land_cover_fractions, "land_cover", spec.land_cover, "1")
    if spec.assimilation is not None:
        req.assimilation.CopyFrom(assimilation_options(spec.assimilation))
    if spec.record_options is not None:
        req.record_options.CopyFrom(record_options(spec.record_options))
    return req


def from_request(
    request: pb.OpenSessionRequest, max_field_bytes: int = F.DEFAULT_MAX_BYTES
) -> SessionSpec:
    """The validated spec of a request (InvalidArgument naming the field and rule otherwise)."""

    def decode(name: str, field: str | None = None) -> np.ndarray:
        return F.decode(getattr(request, field or name), max_field_bytes, name)

    if not request.HasField("lat") or not request.HasField("lon"):
        missing = "lat" if not request.HasField("lat") else "lon"
        raise InvalidArgument(f"{missing}: the grid needs lat and lon", field=missing,
                              rule="required")  # fmt: skip
    start: Any
    which = request.WhichOneof("start")
    if which == "start_time":
        start = np.datetime64(int(request.start_time.seconds), "s")
    elif which == "start_rfc3339":
        start = request.start_rfc3339
    else:
        raise InvalidArgument("start: a start time is required", field="start", rule="required")
    land_cover: Any = "grass"
    which_lc = request.WhichOneof("land_cover")
    if which_lc == "land_cover_name":
        land_cover = request.land_cover_name
    elif which_lc == "land_cover_fractions":
        land_cover = decode("land_cover", "land_cover_fractions")
    return SessionSpec.of(
        lat=decode("lat"),
        lon=decode("lon"),
        area=decode("area") if request.HasField("area") else None,
        land_fraction=decode("land_fraction") if request.HasField("land_fraction") else None,
        grid_shape=tuple(request.grid_shape) or None,
        start=start,
        timestep=int(request.timestep),
        outputs=tuple(request.outputs),
        backend=request.backend,
        land_cover=land_cover,
        run_id=request.run_id,
        rank=int(request.rank),
        members=int(request.members) or None,
        output_spread=bool(request.output_spread),
        checkpoint_url=request.checkpoint_url,
        checkpoint_every=int(request.checkpoint_every),
        record_url=request.record_url,
        assimilation=_options_of(request),
        freeze_vegetation_year=int(request.freeze_vegetation_year) or None,
        record_options=_record_options_of(request),
        parameters_url=request.parameters_url,
        **_heights_of(request),
    )


def _heights_of(request: pb.OpenSessionRequest) -> dict[str, float]:
    """The request's forcing heights that are set (unset ones keep the spec's defaults)."""
    names = ("height_wind", "height_temperature")
    return {name: getattr(request, name) for name in names if request.HasField(name)}


def assimilation_options(config: AssimilationConfig) -> pb.AssimilationOptions:
    """The AssimilationOptions message of a config."""
    opts = configio.to_options(config)
    opts["impact"] = [{"type": t, "kinds": k} for t, k in opts["impact"].items()]
    if opts["observations_url"] is None:
        del opts["observations_url"]
    return json_format.ParseDict(opts, pb.AssimilationOptions())


def _options_of(request: pb.OpenSessionRequest) -> dict[str, Any] | None:
    """The request's AssimilationOptions as a configio options dict (set fields only)."""
    if not request.HasField("assimilation"):
        return None
    opts = json_format.MessageToDict(
        request.assimilation, preserving_proto_field_name=True, use_integers_for_enums=True
    )
    if "impact" in opts:
        opts["impact"] = {i.get("type", ""): list(i.get("kinds", [])) for i in opts["impact"]}
    return opts


def record_options(options: RecordOptions) -> pb.RecordOptions:
    """The RecordOptions message of a spec's record options."""
    msg = pb.RecordOptions(
        codec=F.codec_to_proto(options.codec), chunk_bytes=options.chunk_bytes,
        shard_chunks=options.shard_chunks, lossy_forcing=options.lossy_forcing,
    )  # fmt: skip
    for name, spec in options.fields.items():
        msg.fields[name].CopyFrom(F.codec_to_proto(spec))
    return msg


def _record_codec(msg: pb.Codec, name: str) -> dict[str, Any]:
    """A record codec (wire codecs and the record-only ones) as CodecSpec's dict form."""
    return F.codec_from_proto(msg, name, allowed=RECORD_CODECS).to_dict()


def _record_options_of(request: pb.OpenSessionRequest) -> RecordOptions | None:
    if not request.HasField("record_options"):
        return None
    msg = request.record_options
    opts: dict[str, Any] = {
        "fields": {
            k: _record_codec(v, f"record_options.fields.{k}") for k, v in msg.fields.items()
        },
        "lossy_forcing": bool(msg.lossy_forcing),
    }
    if msg.HasField("codec"):
        opts["codec"] = _record_codec(msg.codec, "record_options.codec")
    if msg.chunk_bytes:
        opts["chunk_bytes"] = int(msg.chunk_bytes)
    if msg.shard_chunks:
        opts["shard_chunks"] = int(msg.shard_chunks)
    return RecordOptions.from_dict(opts)
