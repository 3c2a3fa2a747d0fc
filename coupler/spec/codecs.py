"""Codecs of fields on the wire and in records: :class:`CodecSpec`, the allow-list of numcodecs
codecs and their options, and bit-rounding (numcodecs ``BitRound``).

The wire (``coupler.wire.fields``) and the recorder (``coupler.core.recordformat``) share this
one definition. A peer may use :data:`WIRE_CODECS` on the wire (their frame headers declare the
decoded size, which the wire checks before allocating); records also allow ``pcodec`` (numcodecs
``PCodec``: lossless, ~30 % smaller than zstd/blosc on the float64 time series of a coupled run,
measured in ``docs/replay.md``). Anything else (numcodecs ``pickle``, for one) is refused, as is
any option outside :data:`OPTIONS`. Every refusal is :class:`~coupler.errors.InvalidArgument`
with ``field`` = the field the codec belongs to and ``rule`` in ``codec``, ``codec_config``,
``keepbits``. No torch, no gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numcodecs
import numpy as np

from coupler.errors import InvalidArgument

#: Codecs a record may use (``none`` = raw little-endian bytes).
CODECS: tuple[str, ...] = ("none", "zstd", "blosc", "pcodec")
#: Codecs a peer may use on the wire.
WIRE_CODECS: tuple[str, ...] = ("none", "zstd", "blosc")
#: Mantissa bits of each float type (the largest meaningful ``keepbits``).
MANTISSA_BITS: Mapping[str, int] = {"f2": 10, "f4": 23, "f8": 52}

#: Allowed numcodecs options per codec: name -> (type, min, max) or a set of values.
OPTIONS: Mapping[str, Mapping[str, Any]] = {
    "zstd": {"level": (int, -7, 22), "checksum": {True, False}},
    "blosc": {
        "cname": {"blosclz", "lz4", "lz4hc", "zlib", "zstd"},
        "clevel": (int, 0, 9),
        "shuffle": {-1, 0, 1, 2},
        "blocksize": (int, 0, 1 << 24),
        "typesize": (int, 1, 255),
    },
    # numcodecs 0.16's PCodec wrapper fails on delta_spec "none" and "try_consecutive" with
    # pcodec 1.1, so only the two that work are allowed
    "pcodec": {
        "level": (int, 0, 12),
        "mode_spec": {"auto", "classic"},
        "delta_spec": {"auto", "try_lookback"},
    },
}


@dataclass(frozen=True)
class CodecSpec:
    """How to encode a field: ``id`` in :data:`CODECS`, the numcodecs ``config`` (without
    ``id``), and ``keepbits`` (0 = lossless) for float fields: the floats are bit-rounded to
    ``keepbits`` mantissa bits first (relative error <= 2**-(keepbits+1))."""

    id: str = "none"
    config: Mapping[str, Any] = field(default_factory=dict)
    keepbits: int = 0

    def __post_init__(self) -> None:
        if self.id not in CODECS:
            raise InvalidArgument(
                f"codec {self.id!r} is not allowed; use one of {', '.join(CODECS)}",
                field="codec",
                rule="codec",
            )
        if self.id == "none" and self.config:
            raise InvalidArgument(
                "codec 'none' takes no config", field="codec", rule="codec_config"
            )
        if isinstance(self.keepbits, bool) or not isinstance(self.keepbits, int | np.integer):
            raise InvalidArgument(
                f"keepbits {self.keepbits!r} is not an integer", field="codec", rule="keepbits"
            )
        if not 0 <= self.keepbits <= 52:
            raise InvalidArgument(
                f"keepbits {self.keepbits} outside [0, 52]", field="codec", rule="keepbits"
            )
        if self.id != "none":
            numcodec(self.id, self.config, "codec")

    @staticmethod
    def parse(value: CodecSpec | str | None) -> CodecSpec:
        """``None`` -> raw, ``"zstd"`` -> that codec with numcodecs defaults."""
        if value is None:
            return CodecSpec()
        if isinstance(value, CodecSpec):
            return value
        return CodecSpec(str(value))

    @property
    def lossless(self) -> bool:
        return self.keepbits == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"id", "config", "keepbits"}`` (inverse: :meth:`from_dict`)."""
        return {"id": self.id, "config": dict(self.config), "keepbits": int(self.keepbits)}

    @staticmethod
    def from_dict(d: Mapping[str, Any], name: str = "codec") -> CodecSpec:
        """A spec from :meth:`to_dict`'s form (or a bare id string); errors name ``name``."""
        if isinstance(d, str):
            d = {"id": d}
        if not isinstance(d, Mapping) or not isinstance(d.get("id", "none"), str):
            raise InvalidArgument(
                f"{name}: expected {{'id': ..., 'config': {{...}}, 'keepbits': n}}, got {d!r}",
                field=name,
                rule="codec",
            )
        unknown = sorted(set(d) - {"id", "config", "keepbits"})
        config = d.get("config") or {}
        if unknown or not isinstance(config, Mapping) or "id" in config:
            raise InvalidArgument(
                f"{name}: a codec has 'id', 'config' (a mapping without 'id') and 'keepbits'",
                field=name,
                rule="codec_config",
            )
        try:
            return CodecSpec(d.get("id") or "none", dict(config), d.get("keepbits", 0))
        except InvalidArgument as exc:
            raise InvalidArgument(f"{name}: {exc}", field=name, rule=exc.rule) from None


def max_relative_error(keepbits: int) -> float:
    """The bound of bit-rounding to ``keepbits`` mantissa bits: 2**-(keepbits+1) (0: exact)."""
    return 0.0 if keepbits <= 0 else 2.0 ** -(keepbits + 1)


def check_config(codec_id: str, config: Mapping[str, Any], name: str) -> None:
    """Refuse an option of ``codec_id`` outside :data:`OPTIONS` (rule ``codec_config``)."""
    allowed = OPTIONS[codec_id]
    for key, value in config.items():
        rule = allowed.get(key)
        if rule is None:
            raise InvalidArgument(
                f"{codec_id} has no option {key!r}; options: {', '.join(sorted(allowed))}",
                field=name,
                rule="codec_config",
            )
        if isinstance(rule, tuple):
            kind, lo, hi = rule
            ok = isinstance(value, kind) and not isinstance(value, bool) and lo <= value <= hi
            want = f"an integer in [{lo}, {hi}]"
        else:
            ok = any(value == v and type(value) is type(v) for v in rule)
            want = f"one of {sorted(rule, key=str)}"
        if not ok:
            raise InvalidArgument(
                f"{codec_id} option {key}={value!r}: expected {want}",
                field=name,
                rule="codec_config",
            )


def numcodec(codec_id: str, config: Mapping[str, Any], name: str) -> numcodecs.abc.Codec:
    """The numcodecs codec of an allowed id and checked config."""
    check_config(codec_id, config, name)
    if codec_id == "pcodec":
        try:
            from numcodecs.pcodec import PCodec
        except ImportError as exc:  # pragma: no cover  (a dependency of the package)
            raise InvalidArgument(
                f"codec 'pcodec' needs the pcodec package: {exc}", field=name, rule="codec"
            ) from None
        return PCodec(**dict(config))
    try:
        return numcodecs.get_codec({"id": codec_id, **config})
    except (TypeError, ValueError, KeyError) as exc:  # pragma: no cover  (options pre-checked)
        raise InvalidArgument(
            f"bad {codec_id} config {dict(config)!r}: {exc}", field=name, rule="codec_config"
        ) from None


def bitround(values: np.ndarray, keepbits: int) -> np.ndarray:
    """Round float ``values`` to ``keepbits`` mantissa bits (numcodecs BitRound, round to nearest
    even); the relative error is at most 2**-(keepbits+1). Integers are returned unchanged."""
    if keepbits <= 0 or values.dtype.kind != "f":
        return values
    limit = MANTISSA_BITS[values.dtype.str[1:]]
    if keepbits >= limit:
        return values
    native = np.require(values, dtype=values.dtype.newbyteorder("="), requirements="C")
    rounded = numcodecs.BitRound(keepbits=keepbits).encode(native)
    return np.asarray(rounded).view(native.dtype).reshape(values.shape)
