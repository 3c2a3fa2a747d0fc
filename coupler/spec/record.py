"""How a session's record is written (record format v2, ``docs/replay.md``): :class:`RecordOptions`.

Every recorded field gets a codec (:class:`~coupler.spec.codecs.CodecSpec`): the forcing is
lossless (bitwise replay needs it) unless ``lossy_forcing`` says otherwise, and outputs may be
bit-rounded to ``keepbits`` mantissa bits (relative error <= 2**-(keepbits+1)). Time chunks
hold at least ``chunk_bytes`` of uncompressed data (all cells of a field), ``shard_chunks``
chunks make one stored object (Zarr v3 sharding). Errors are InvalidArgument naming
``record_options.<field>`` and the rule. No torch, no gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coupler.errors import InvalidArgument
from coupler.spec.codecs import CodecSpec
from emulators import variables as V

#: The lossless default: pcodec on time series (measured ~30 % smaller than blosc/zstd).
DEFAULT_CODEC = CodecSpec("pcodec", {"level": 8})
#: The codec of bit-rounded fields: byte-shuffled zstd packs the zeroed low bytes best.
ROUNDED_CODEC = CodecSpec("blosc", {"cname": "zstd", "clevel": 5, "shuffle": 1})
DEFAULT_CHUNK_BYTES = 1 << 20
DEFAULT_SHARD_CHUNKS = 64
CHUNK_BYTES_RANGE = (1 << 10, 1 << 28)
SHARD_CHUNKS_RANGE = (1, 1 << 12)

#: Suggested keepbits of the outputs when a record should be small (``RecordOptions.compact``):
#: relative error 2**-(k+1): fluxes 10 (<= 4.9e-4, 0.25 W m-2 at 500), ts 14 (<= 3.1e-5, 9 mK
#: at 300 K), water fluxes and LAI 9 (<= 9.8e-4), stores 14.
COMPACT_KEEPBITS: Mapping[str, int] = {
    "hfls": 10, "hfss": 10, "hfdsl": 10, "rns": 10, "rsus": 10, "rlus": 10, "albedo": 10,
    "ts": 14, "evspsbl": 9, "tran": 9, "mrro": 9, "gpp": 9, "lai": 9, "z0": 9,
    "mrso": 14, "mrsos": 14,
}  # fmt: skip


def _bad(name: str, rule: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{name}: {message}", field=name, rule=rule)


def recordable(name: str) -> str | None:
    """'forcing' or 'output' for a name a record can hold (``<output>_spread`` too), else None."""
    base = name[: -len("_spread")] if name.endswith("_spread") else name
    var = V.REGISTRY.get(base)
    if var is None:
        return None
    if var.direction is V.Direction.TO_LAND:
        return "forcing" if base == name else None
    if var.direction in (V.Direction.TO_ATMOSPHERE, V.Direction.DIAGNOSTIC):
        return "output"
    return None


@dataclass(frozen=True)
class RecordOptions:
    """codec: the (lossless) codec of every field not in ``fields``. fields: registry name (or
    ``<name>_spread``) -> its codec, possibly with ``keepbits``. chunk_bytes: uncompressed bytes
    of one time chunk of one field (>= this; 1 MiB default). shard_chunks: time chunks per
    stored object. lossy_forcing: allow ``keepbits`` on forcing (such a record cannot be
    replayed bit for bit; replay says so)."""

    codec: CodecSpec = DEFAULT_CODEC
    fields: Mapping[str, CodecSpec] = field(default_factory=dict)
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    shard_chunks: int = DEFAULT_SHARD_CHUNKS
    lossy_forcing: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.codec, CodecSpec):
            raise _bad("record_options.codec", "type", f"expected a CodecSpec, got {self.codec!r}")
        if self.codec.keepbits:
            raise _bad(
                "record_options.codec",
                "lossless",
                "the default codec is lossless; give keepbits per field in 'fields'",
            )
        if not isinstance(self.fields, Mapping):
            raise _bad("record_options.fields", "type", "expected a mapping name -> codec")
        checked: dict[str, CodecSpec] = {}
        for name, spec in self.fields.items():
            where = f"record_options.fields.{name}"
            role = recordable(name) if isinstance(name, str) else None
            if role is None:
                raise _bad(where, "known_name", f"{name!r} is not a forcing or output field")
            if not isinstance(spec, CodecSpec):
                spec = CodecSpec.from_dict(spec, where)
            if role == "forcing" and spec.keepbits and not self.lossy_forcing:
                raise _bad(
                    where,
                    "lossless_forcing",
                    f"keepbits={spec.keepbits} on forcing {name!r} would make the record "
                    "unreplayable bit for bit; set lossy_forcing to allow it",
                )
            checked[name] = spec
        object.__setattr__(self, "fields", checked)
        for name, (lo, hi) in (
            ("chunk_bytes", CHUNK_BYTES_RANGE),
            ("shard_chunks", SHARD_CHUNKS_RANGE),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise _bad(
                    f"record_options.{name}", "int_range", f"must be in [{lo}, {hi}], got {value!r}"
                )
        if not isinstance(self.lossy_forcing, bool):
            raise _bad("record_options.lossy_forcing", "type", "must be a bool")

    def codec_for(self, name: str) -> CodecSpec:
        """The codec of stored field ``name``."""
        return self.fields.get(name, self.codec)

    @staticmethod
    def compact(keepbits: Mapping[str, int] | None = None, **kwargs: Any) -> RecordOptions:
        """Lossless forcing, outputs bit-rounded (``keepbits``, default
        :data:`COMPACT_KEEPBITS`) with :data:`ROUNDED_CODEC`."""
        table = COMPACT_KEEPBITS if keepbits is None else keepbits
        fields = {
            name: CodecSpec(ROUNDED_CODEC.id, dict(ROUNDED_CODEC.config), int(k))
            for name, k in table.items()
        }
        fields.update(kwargs.pop("fields", {}))
        return RecordOptions(fields=fields, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "codec": self.codec.to_dict(),
            "fields": {k: v.to_dict() for k, v in sorted(self.fields.items())},
            "chunk_bytes": self.chunk_bytes,
            "shard_chunks": self.shard_chunks,
            "lossy_forcing": self.lossy_forcing,
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any] | RecordOptions | None) -> RecordOptions:
        """Options from :meth:`to_dict`'s form; ``"compact": true`` starts from
        :meth:`compact`, ``"keepbits": {name: k}`` rounds those outputs with
        :data:`ROUNDED_CODEC`. None: the defaults."""
        if d is None:
            return RecordOptions()
        if isinstance(d, RecordOptions):
            return d
        if not isinstance(d, Mapping):
            raise _bad("record_options", "type", f"expected a mapping, got {type(d).__name__}")
        known = {"codec", "fields", "chunk_bytes", "shard_chunks", "lossy_forcing", "compact",
                 "keepbits"}  # fmt: skip
        unknown = sorted(set(d) - known)
        if unknown:
            raise _bad("record_options", "known_option", f"unknown option(s) {unknown}")
        fields: dict[str, Any] = {}
        if d.get("compact"):
            fields.update(RecordOptions.compact().fields)
        keepbits = d.get("keepbits") or {}
        if not isinstance(keepbits, Mapping):
            raise _bad("record_options.keepbits", "type", "expected a mapping name -> bits")
        for name, k in keepbits.items():
            fields[name] = {**ROUNDED_CODEC.to_dict(), "keepbits": k}
        fields.update(d.get("fields") or {})
        kwargs: dict[str, Any] = {k: d[k] for k in ("chunk_bytes", "shard_chunks") if k in d}
        return RecordOptions(
            codec=CodecSpec.from_dict(d.get("codec") or DEFAULT_CODEC.to_dict(),
                                      "record_options.codec"),
            fields=fields,
            lossy_forcing=bool(d.get("lossy_forcing", False)),
            **kwargs,
        )  # fmt: skip
