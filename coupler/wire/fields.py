"""ndarray <-> ``landcoupler.v1.Field``: dtypes, codecs, bit-rounding, precise decode errors.

A field travels as little-endian element bytes, raw (codec ``none``) or compressed with a
whitelisted numcodecs codec (``zstd``, ``blosc``), optionally bit-rounded first (numcodecs
``BitRound``, lossy, chosen by the sender per field: relative error <= 2**-(keepbits+1)).

Decoding never trusts the sender: the dtype must be known, the shape sane, the decoded size
must be exactly ``prod(shape) * itemsize`` and at most ``max_bytes`` (a compressed payload's
declared size is read from its frame header *before* anything is allocated, so a decompression
bomb is refused cheaply). Every failure is :class:`~coupler.errors.InvalidArgument`
naming the field and the rule (``dtype``, ``shape``, ``size``, ``codec``, ``codec_config``,
``codec_data``, ``keepbits``, ``max_bytes``). Raw decoding is zero-copy: the result is a
read-only ``np.frombuffer`` view of the message's bytes; callers that must write copy it.

This module knows the generated ``Field`` message but not gRPC.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.errors import InvalidArgument
from coupler.spec.codecs import WIRE_CODECS, CodecSpec, bitround, numcodec

__all__ = [
    "CODECS", "CodecSpec", "as_reply_dtype", "bitround", "decode", "encode", "encode_all",
    "encode_into", "layout", "reply_dtype", "reply_dtype_code",
]  # fmt: skip

#: proto DType <-> explicit little-endian numpy dtype.
DTYPES: Mapping[int, np.dtype] = {
    pb.DTYPE_FLOAT32: np.dtype("<f4"),
    pb.DTYPE_FLOAT64: np.dtype("<f8"),
    pb.DTYPE_FLOAT16: np.dtype("<f2"),
    pb.DTYPE_INT8: np.dtype("i1"),
    pb.DTYPE_INT16: np.dtype("<i2"),
    pb.DTYPE_INT32: np.dtype("<i4"),
    pb.DTYPE_INT64: np.dtype("<i8"),
    pb.DTYPE_UINT8: np.dtype("u1"),
    pb.DTYPE_UINT16: np.dtype("<u2"),
    pb.DTYPE_UINT32: np.dtype("<u4"),
    pb.DTYPE_UINT64: np.dtype("<u8"),
}
_PROTO_DTYPE: Mapping[str, int] = {dt.str.replace("|", "<"): code for code, dt in DTYPES.items()}

#: Codecs a peer may use; anything else (e.g. numcodecs "pickle" or the record-only "pcodec") is
#: refused.
CODECS: tuple[str, ...] = WIRE_CODECS
#: Default ceiling on one decoded field (bytes).
DEFAULT_MAX_BYTES = 1 << 30
MAX_RANK = 8

_ZSTD_MAGIC = 0xFD2FB528
_BLOSC_HEADER = 16


#: The dtypes a step's reply may travel in (``StepRequest.reply_dtype``; unset = float64).
REPLY_DTYPES: Mapping[int, np.dtype] = {
    pb.DTYPE_UNSPECIFIED: np.dtype("<f8"),
    pb.DTYPE_FLOAT64: np.dtype("<f8"),
    pb.DTYPE_FLOAT32: np.dtype("<f4"),
}


def reply_dtype(code: int) -> np.dtype:
    """The numpy dtype of a ``StepRequest.reply_dtype``; anything but float32/float64 (or
    unset) is InvalidArgument(field ``reply_dtype``, rule ``dtype``)."""
    dtype = REPLY_DTYPES.get(code)
    if dtype is None:
        name = pb.DType.Name(code) if code in pb.DType.values() else str(code)
        raise InvalidArgument(
            f"reply_dtype: {name} is not a reply dtype; use DTYPE_FLOAT32 or DTYPE_FLOAT64",
            field="reply_dtype",
            rule="dtype",
        )
    return dtype


def reply_dtype_code(value: Any) -> int:
    """A client's ``reply_dtype`` option (None, ``"float32"``, ``"float64"`` or a numpy dtype)
    as the proto DType it sends; None and float64 send nothing (``DTYPE_UNSPECIFIED``)."""
    if value is None:
        return pb.DTYPE_UNSPECIFIED
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    if dtype is not None and dtype.kind == "f" and dtype.itemsize in (4, 8):
        return pb.DTYPE_FLOAT32 if dtype.itemsize == 4 else pb.DTYPE_UNSPECIFIED
    raise InvalidArgument(
        f"reply_dtype: {value!r} is not a reply dtype; use 'float32' or 'float64'",
        field="reply_dtype",
        rule="dtype",
    )


def as_reply_dtype(out: Mapping[str, np.ndarray], dtype: np.dtype) -> dict[str, np.ndarray]:
    """A step's outputs in ``dtype`` (float64 ones unchanged; otherwise rounded to nearest,
    read-only), the same on every transport."""
    if dtype == np.float64:
        return dict(out)
    cast = {}
    for name, values in out.items():
        arr = np.asarray(values).astype(dtype)
        arr.flags.writeable = False
        cast[name] = arr
    return cast


def codec_to_proto(spec: CodecSpec) -> pb.Codec:
    """The proto Codec of a spec."""
    return pb.Codec(
        id=spec.id, config_json=json.dumps(dict(spec.config)) if spec.config else "",
        keepbits=spec.keepbits,
    )  # fmt: skip


def codec_from_proto(
    msg: pb.Codec, name: str = "codec", allowed: tuple[str, ...] = CODECS
) -> CodecSpec:
    """Parse a proto Codec, naming ``name`` (the field it belongs to) in errors; ``allowed``:
    the codec ids accepted (the wire's; records also take ``coupler.spec.codecs.CODECS``)."""
    codec_id = msg.id or "none"
    if codec_id not in allowed:
        raise InvalidArgument(
            f"codec {codec_id!r} is not allowed; use one of {', '.join(allowed)}",
            field=name,
            rule="codec",
        )
    config: dict[str, Any] = {}
    if msg.config_json:
        try:
            config = json.loads(msg.config_json)
        except ValueError as exc:
            raise InvalidArgument(
                f"codec config is not JSON: {exc}", field=name, rule="codec_config"
            ) from None
        if not isinstance(config, dict) or "id" in config:
            raise InvalidArgument(
                "codec config must be a JSON object without 'id'", field=name,
                rule="codec_config",
            )  # fmt: skip
    try:
        return CodecSpec(codec_id, config, int(msg.keepbits))
    except InvalidArgument as exc:
        raise InvalidArgument(str(exc), field=name, rule=exc.rule) from None


def wire_codec(value: CodecSpec | str | None, name: str = "codec") -> CodecSpec:
    """:meth:`CodecSpec.parse`, refusing the codecs a peer may not use (rule ``codec``)."""
    spec = CodecSpec.parse(value)
    if spec.id not in CODECS:
        raise InvalidArgument(
            f"codec {spec.id!r} is for records only; on the wire use one of {', '.join(CODECS)}",
            field=name,
            rule="codec",
        )
    return spec


def proto_dtype(dtype: np.dtype) -> int:
    """The proto DType of a numpy dtype (either byte order)."""
    dt = np.dtype(dtype)
    key = dt.newbyteorder("<").str.replace("|", "<")
    try:
        return _PROTO_DTYPE[key]
    except KeyError:
        raise InvalidArgument(f"dtype {dt} cannot be sent", field="dtype", rule="dtype") from None


def encode(
    name: str, values: Any, units: str = "", codec: CodecSpec | str | None = None
) -> pb.Field:
    """A Field message from an array (copied once into little-endian bytes, or compressed)."""
    return encode_into(pb.Field(), name, values, units, codec)


def encode_into(
    msg: pb.Field, name: str, values: Any, units: str = "", codec: CodecSpec | str | None = None
) -> pb.Field:
    """Fill ``msg`` (e.g. ``request.fields.add()`` or ``frame.field``) in place, so a big
    payload is copied into the message once, not again when it is wrapped. Returns ``msg``."""
    spec = wire_codec(codec, name)
    arr = np.asarray(values)
    code = proto_dtype(arr.dtype)
    arr = np.require(arr, dtype=arr.dtype.newbyteorder("<"), requirements="C")
    if spec.keepbits:
        arr = bitround(arr, spec.keepbits)
    msg.name = name
    msg.units = units
    msg.dtype = code  # type: ignore[assignment]
    msg.shape[:] = arr.shape
    if spec.id == "none":
        msg.data = arr.tobytes()
    else:
        msg.data = bytes(numcodec(spec.id, spec.config, name).encode(arr))
    if spec.id != "none" or spec.keepbits:
        msg.codec.CopyFrom(codec_to_proto(spec))
    return msg


def decode(
    msg: pb.Field, max_bytes: int = DEFAULT_MAX_BYTES, name: str | None = None, data: Any = None
) -> np.ndarray:
    """The array of a Field message: zero-copy and read-only for raw fields. ``data``: the
    field's data when it was parsed apart from the message (``coupler.wire.reader``: a view of
    the received bytes), else ``msg.data``.

    Raises InvalidArgument(field=name or msg.name, rule=...) for an unknown dtype, a bad shape, a
    size mismatch, an unknown or misconfigured codec, corrupt compressed data, or a field larger
    than ``max_bytes`` bytes.
    """
    name = name or msg.name or "<unnamed>"
    dtype, shape, nbytes = layout(name, msg.dtype, msg.shape, max_bytes)
    spec = codec_from_proto(msg.codec, name)
    if data is None:
        data = msg.data
    if spec.id == "none":
        if len(data) != nbytes:
            raise InvalidArgument(
                f"field {name!r}: {len(data)} bytes, expected {nbytes} for shape {shape} of "
                f"{dtype.name}",
                field=name,
                rule="size",
            )
        return np.frombuffer(data, dtype=dtype).reshape(shape)
    declared = _declared_size(spec.id, data, name)
    if declared != nbytes:
        raise InvalidArgument(
            f"field {name!r}: {spec.id} payload holds {declared} bytes, expected {nbytes} for "
            f"shape {shape} of {dtype.name}",
            field=name,
            rule="size",
        )
    out = np.empty(shape, dtype=dtype)
    try:
        numcodec(spec.id, spec.config, name).decode(data, out=out.reshape(-1).view(np.uint8))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise InvalidArgument(
            f"field {name!r}: corrupt {spec.id} data: {exc}", field=name, rule="codec_data"
        ) from None
    out.flags.writeable = False
    return out


def layout(
    name: str, dtype_code: int, shape_given: Any, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, bytes) of an array a peer describes by a proto ``DType`` and a shape, the
    checks of :func:`decode` before it looks at the bytes (also those of a field in shared
    memory, ``coupler.wire.shared``): InvalidArgument(field=name) rule ``dtype``, ``shape`` or
    ``max_bytes``."""
    dtype = DTYPES.get(dtype_code)
    if dtype is None:
        raise InvalidArgument(
            f"field {name!r}: unknown dtype {dtype_code}", field=name, rule="dtype"
        )
    shape = tuple(int(n) for n in shape_given)
    if len(shape) > MAX_RANK:
        raise InvalidArgument(
            f"field {name!r}: rank {len(shape)} > {MAX_RANK}", field=name, rule="shape"
        )
    # every extent counts, even beside a zero: numpy refuses shapes whose non-zero extents
    # overflow its index type (e.g. (0, 2**30, 2**30) of uint64), so bound them here
    nbytes = math.prod(shape) * dtype.itemsize
    extent = math.prod(d for d in shape if d) * dtype.itemsize
    if extent > max_bytes:
        raise InvalidArgument(
            f"field {name!r}: shape {shape} of {dtype} spans {extent} bytes > limit {max_bytes}",
            field=name,
            rule="max_bytes",
        )
    if nbytes > max_bytes:
        raise InvalidArgument(
            f"field {name!r}: shape {shape} of {dtype} is {nbytes} bytes > limit {max_bytes}",
            field=name,
            rule="max_bytes",
        )
    return dtype, shape, nbytes


def _declared_size(codec_id: str, data: bytes, name: str) -> int:
    """The decompressed size a zstd frame or blosc buffer declares in its header (bytes)."""
    try:
        if codec_id == "zstd":
            return _zstd_content_size(data)
        if len(data) < _BLOSC_HEADER:
            raise ValueError("shorter than the 16-byte blosc header")
        nbytes, _blocksize, cbytes = struct.unpack_from("<III", data, 4)
        if cbytes != len(data):
            raise ValueError(f"header says {cbytes} compressed bytes, got {len(data)}")
        return int(nbytes)
    except (ValueError, struct.error) as exc:
        raise InvalidArgument(
            f"field {name!r}: corrupt {codec_id} data: {exc}", field=name, rule="codec_data"
        ) from None


def _zstd_content_size(data: bytes) -> int:
    """Frame_Content_Size of a zstd frame (RFC 8878 section 3.1.1.1); it must be present."""
    if len(data) < 5 or struct.unpack_from("<I", data)[0] != _ZSTD_MAGIC:
        raise ValueError("not a zstd frame")
    fhd = data[4]
    fcs_flag, single_segment, dict_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
    pos = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
    size = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
    if size == 0:
        raise ValueError("the frame does not declare its content size")
    if len(data) < pos + size:
        raise ValueError("truncated frame header")
    value = int.from_bytes(data[pos : pos + size], "little")
    return value + 256 if size == 2 else value


def encode_all(
    fields: Mapping[str, Any],
    units: Mapping[str, str] | None = None,
    codec: CodecSpec | str | Mapping[str, CodecSpec | str | None] | None = None,
) -> list[pb.Field]:
    """Encode several arrays; ``codec`` is one spec for all or a mapping name -> spec."""
    out = []
    for name, values in fields.items():
        spec = codec.get(name) if isinstance(codec, Mapping) else codec
        out.append(encode(name, values, (units or {}).get(name, ""), spec))
    return out
