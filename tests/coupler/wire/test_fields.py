"""ndarray <-> Field: round trips over dtypes, shapes and codecs; bit-rounding error bound;
zero-copy raw decoding; a precise InvalidArgument for every kind of bad payload."""

from __future__ import annotations

import json
import struct
from typing import Any, cast

import numcodecs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.errors import InvalidArgument
from coupler.wire import fields as F

DTYPES = ["<f4", "<f8", "<f2", "i1", "<i2", "<i4", "<i8", "u1", "<u2", "<u4", "<u8", ">f8", ">i4"]
CODECS = [
    None,
    "zstd",
    "blosc",
    F.CodecSpec("zstd", {"level": 5}),
    F.CodecSpec("blosc", {"cname": "zstd", "clevel": 3, "shuffle": 1}),
    F.CodecSpec("blosc", {"cname": "lz4", "clevel": 1, "shuffle": 2}),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arr=st.sampled_from(DTYPES).flatmap(
        lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=3, max_side=40))
    ),
    codec=st.sampled_from(CODECS),
)
def test_round_trip_is_exact(arr: np.ndarray, codec: F.CodecSpec | str | None) -> None:
    msg = pb.Field.FromString(F.encode("x", arr, "K", codec).SerializeToString())
    out = F.decode(msg)
    assert out.shape == arr.shape
    assert out.dtype == arr.dtype.newbyteorder("<")
    assert out.dtype.byteorder in ("<", "|", "=")
    # bit-for-bit, NaN payloads included
    assert out.tobytes() == arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    assert not out.flags.writeable


def test_wire_bytes_are_little_endian() -> None:
    msg = F.encode("tas", np.array([1.0, 2.0], dtype=">f8"))
    assert msg.data == struct.pack("<2d", 1.0, 2.0)
    assert msg.dtype == pb.DTYPE_FLOAT64
    assert list(msg.shape) == [2]


def test_raw_decode_is_zero_copy() -> None:
    msg = F.encode("tas", np.arange(1000, dtype=np.float64))
    data = msg.data  # the bytes object the decoder sees
    out = np.frombuffer(data, dtype="<f8")
    decoded = F.decode(msg)
    assert decoded.base is not None and not decoded.flags.owndata
    assert not decoded.flags.writeable
    np.testing.assert_array_equal(decoded, out)


@settings(max_examples=100, deadline=None)
@given(
    arr=hnp.arrays(
        cast(Any, st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])),
        st.integers(1, 300),
        elements=st.floats(-(2.0**100), 2.0**100, allow_nan=False, allow_subnormal=False, width=32),
    ),
    keepbits=st.integers(1, 22),
    codec=st.sampled_from(["none", "zstd", "blosc"]),
)
def test_bitround_error_bound(arr: np.ndarray, keepbits: int, codec: str) -> None:
    """Relative error of bit-rounding to k mantissa bits is at most 2**-(k+1)."""
    spec = F.CodecSpec(codec, keepbits=keepbits)
    msg = F.encode("hfls", arr, "W m-2", spec)
    assert msg.codec.keepbits == keepbits
    out = F.decode(pb.Field.FromString(msg.SerializeToString())).astype(np.float64)
    ref = arr.astype(np.float64)
    nonzero = ref != 0
    rel = np.abs(out[nonzero] - ref[nonzero]) / np.abs(ref[nonzero])
    assert (rel <= 2.0 ** -(keepbits + 1)).all()
    assert (out[~nonzero] == 0).all()


def test_bitround_compresses_better() -> None:
    rng = np.random.default_rng(0)
    arr = 280.0 + rng.standard_normal(50_000)
    lossless = F.encode("tas", arr, codec="zstd")
    rounded = F.encode("tas", arr, codec=F.CodecSpec("zstd", keepbits=10))
    assert len(rounded.data) < 0.5 * len(lossless.data)


def _bad(msg: pb.Field, rule: str, field: str = "tas") -> None:
    with pytest.raises(InvalidArgument) as info:
        F.decode(msg, max_bytes=1 << 20)
    assert (info.value.field, info.value.rule) == (field, rule), str(info.value)


def good(n: int = 4, codec: str | None = None) -> pb.Field:
    return F.encode("tas", np.full(n, 290.0), "K", codec)


def test_decode_refuses_an_unknown_dtype() -> None:
    for code in (0, 12, 99):
        msg = good()
        msg.dtype = code  # type: ignore[assignment]
        _bad(msg, "dtype")


def test_decode_refuses_a_size_mismatch() -> None:
    msg = good()
    msg.data = msg.data[:-1]
    _bad(msg, "size")
    msg = good()
    msg.shape[:] = [5]
    _bad(msg, "size")
    msg = good()
    msg.shape[:] = [2, 3]
    _bad(msg, "size")


def test_decode_refuses_huge_shapes_before_allocating() -> None:
    msg = good()
    msg.shape[:] = [1 << 40, 1 << 20]
    _bad(msg, "max_bytes")
    msg.shape[:] = [1] * 9
    _bad(msg, "shape")


def test_decode_refuses_unknown_codecs_and_configs() -> None:
    msg = good()
    msg.codec.id = "pickle"  # never let a peer pick an arbitrary numcodecs codec
    _bad(msg, "codec")
    msg = good(codec="zstd")
    msg.codec.config_json = "{not json"
    _bad(msg, "codec_config")
    msg.codec.config_json = json.dumps({"id": "zstd"})
    _bad(msg, "codec_config")
    msg.codec.config_json = json.dumps({"no_such_option": 1})
    _bad(msg, "codec_config")
    msg = good()
    msg.codec.keepbits = 60
    _bad(msg, "keepbits")


def test_decode_refuses_corrupt_compressed_data() -> None:
    for codec in ("zstd", "blosc"):
        msg = good(1000, codec)
        msg.data = b"garbage" * 3
        _bad(msg, "codec_data")
        msg = good(1000, codec)
        msg.data = msg.data[: len(msg.data) // 2]
        _bad(msg, "codec_data")


def test_decode_refuses_a_decompression_bomb() -> None:
    """A zstd frame that declares more bytes than the shape needs is refused from its header."""
    bomb = numcodecs.Zstd(level=1).encode(np.zeros(1 << 20, dtype=np.uint8))
    msg = good()
    msg.codec.id = "zstd"
    msg.data = bytes(bomb)
    _bad(msg, "size")
    big = numcodecs.Blosc().encode(np.zeros(1 << 20, dtype=np.uint8))
    msg.codec.id = "blosc"
    msg.data = bytes(big)
    _bad(msg, "size")


def test_decode_names_the_given_field() -> None:
    msg = good()
    msg.data = b""
    with pytest.raises(InvalidArgument) as info:
        F.decode(msg, name="batches[0].values")
    assert info.value.field == "batches[0].values"


def test_encode_refuses_dtypes_the_wire_cannot_carry() -> None:
    with pytest.raises(InvalidArgument) as info:
        F.encode("tas", np.array([True, False]))
    assert info.value.rule == "dtype"
    with pytest.raises(InvalidArgument):
        F.encode("tas", np.array([1 + 2j]))


def test_codec_spec_validates_itself() -> None:
    with pytest.raises(InvalidArgument) as info:
        F.CodecSpec("lzma")
    assert info.value.rule == "codec"
    with pytest.raises(InvalidArgument) as info:
        F.CodecSpec("none", {"level": 1})
    assert info.value.rule == "codec_config"
    with pytest.raises(InvalidArgument) as info:
        F.CodecSpec("zstd", keepbits=-1)
    assert info.value.rule == "keepbits"
    bad_configs: list[tuple[str, dict[str, Any]]] = [
        ("blosc", {"cname": 5}),
        ("blosc", {"cname": "nope"}),
        ("blosc", {"clevel": 10}),
        ("blosc", {"shuffle": 7}),
        ("blosc", {"blocksize": -1}),
        ("zstd", {"level": 100}),
        ("zstd", {"level": "3"}),
        ("zstd", {"checksum": "y"}),
        ("zstd", {"dictionary": "x"}),
    ]
    for codec_id, config in bad_configs:
        with pytest.raises(InvalidArgument) as info:
            F.CodecSpec(codec_id, config)
        assert info.value.rule == "codec_config", (codec_id, config)


def test_zero_size_shape_with_huge_extents_is_refused_precisely() -> None:
    """Found by the Hypothesis fuzz test: (0, 2**30, 2**30) of uint64 made numpy raise."""
    msg = F.encode("tas", np.zeros(0))
    del msg.shape[:]
    msg.shape.extend([0, 1 << 30, 1 << 30])
    msg.dtype = pb.DTYPE_UINT64
    with pytest.raises(InvalidArgument) as err:
        F.decode(msg)
    assert (err.value.field, err.value.rule) == ("tas", "max_bytes")
