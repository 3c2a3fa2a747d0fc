"""Record format v2: random fields round-trip through a real recorder and the replay source
(lossless fields exactly, bit-rounded ones within 2**-(keepbits+1); forcing in the dtype it came
in: float32 stays float32, anything else float64); layout, attributes,
chunking, sharding and the object count; options are validated with precise errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupler.core import checkpoint
from coupler.core import recordformat as RF
from coupler.core.recorder import ZarrRecorder
from coupler.errors import InvalidArgument
from coupler.replay import RecordSource, open_dataset
from coupler.spec import CodecSpec, RecordOptions, SessionSpec
from coupler.spec.codecs import bitround, max_relative_error
from emulators import variables as V

from .conftest import OUTPUTS, grid, memory_url, record, spec

DTYPES = ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8")
CODECS = (
    CodecSpec(),
    CodecSpec("zstd", {"level": 3}),
    CodecSpec("zstd", {"level": -2, "checksum": True}),
    CodecSpec("blosc", {"cname": "lz4", "clevel": 5, "shuffle": 1}),
    CodecSpec("blosc", {"cname": "zstd", "clevel": 3, "shuffle": 2}),
    CodecSpec("pcodec", {"level": 8}),
    CodecSpec("pcodec", {"level": 3, "delta_spec": "try_lookback", "mode_spec": "classic"}),
)


def _values(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "f":
        scale = {"f2": 1e3, "f4": 1e30, "f8": 1e300}[dtype]
        raw = rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, np.log10(scale) - 1, shape)
        raw[rng.uniform(size=shape) < 0.1] = 0.0
        out = raw.astype(dt)
        out[out != 0] = np.where(np.abs(out[out != 0]) < np.finfo(dt).tiny, 1, out[out != 0])
        return out
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)


@st.composite
def cases(draw: st.DrawFn) -> dict:
    names = list(V.REQUIRED_FORCING) + list(OUTPUTS)
    return {
        "n": draw(st.integers(1, 7)),
        "steps": draw(st.integers(1, 45)),
        "dtypes": {k: draw(st.sampled_from(DTYPES)) for k in names},
        "codecs": {k: draw(st.sampled_from(CODECS)) for k in names},
        "keepbits": {k: draw(st.sampled_from([0, 0, 1, 7, 10, 23, 40, 52])) for k in names},
        "chunk_bytes": draw(st.sampled_from([1024, 2048, 1 << 20])),
        "shard_chunks": draw(st.integers(1, 4)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def _start_blob(cfg: SessionSpec) -> bytes:
    return checkpoint.to_bytes(
        checkpoint.CheckpointData("h", "h", cfg, {"name": "none"}, 0, state={})
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_random_fields_round_trip_through_record_and_source(case: dict) -> None:
    fields = {
        k: CodecSpec(c.id, dict(c.config), case["keepbits"].get(k, 0))
        for k, c in case["codecs"].items()
    }
    lossy = any(case["keepbits"][k] for k in V.REQUIRED_FORCING)
    options = RecordOptions(
        fields=fields, chunk_bytes=case["chunk_bytes"], shard_chunks=case["shard_chunks"],
        lossy_forcing=lossy,
    )  # fmt: skip
    n, steps = case["n"], case["steps"]
    cfg = spec(n, grid=grid(n), record_options=options)
    url = memory_url("hypo")
    rng = np.random.default_rng(case["seed"])
    sent = {k: _values(rng, case["dtypes"][k], (steps, n)) for k in fields}
    rec = ZarrRecorder(url, cfg, {"name": "none"}, start=_start_blob(cfg))
    for i in range(steps):
        rec.record(
            i,
            {k: sent[k][i] for k in V.REQUIRED_FORCING},
            {k: sent[k][i] for k in OUTPUTS},
        )
    rec.close()
    src = RecordSource(url)
    assert src.n_steps == steps and src.truncated is None
    got = src.read(0, steps).fields
    for name, values in sent.items():
        stored = RF.stored_dtype(values.dtype) if name in V.REQUIRED_FORCING else np.float64
        want = values.astype(stored)
        assert got[name].dtype == want.dtype == src.dtypes[name], name
        kb = src.keepbits[name]
        assert kb == case["keepbits"].get(name, 0)
        if kb == 0:
            assert got[name].tobytes() == want.tobytes(), name
        else:
            bound = max_relative_error(kb) * np.abs(want)
            assert (np.abs(got[name] - want) <= bound).all(), name
    # blocks (prefetched) give the same bytes as one read
    joined = {k: np.concatenate([b.fields[k] for b in src.blocks()]) for k in sent}
    assert all(joined[k].tobytes() == got[k].tobytes() for k in sent)


def test_layout_attributes_and_object_count(tmp_path: Path) -> None:
    url = str(tmp_path / "rank0.zarr")
    options = RecordOptions.compact(chunk_bytes=1024, shard_chunks=2)
    replies = record(url, 60, n=6, record_options=options)
    src = RecordSource(url)
    assert (src.n_steps, src.closed, src.truncated, src.starts) == (60, True, None, [0])
    assert src.chunk_steps == 22  # ceil(1024 B / (6 cells * 8 B))
    ds = xr.open_zarr(url, consolidated=False)
    assert ds.hfls.dims == ("cell", "time") and ds.hfls.encoding["chunks"] == (6, 22)
    assert ds.hfls.attrs["keepbits"] == 10 and ds.hfls.attrs["max_relative_error"] == 2.0**-11
    assert ds.tas.attrs["landcoupler_codec"]["id"] == "pcodec" and "keepbits" not in ds.tas.attrs
    assert ds.tas.attrs["units"] == "K" and ds.hfls.attrs["positive"] == "up"
    assert ds.attrs["record_format"] == "landcoupler-record" and ds.attrs["record_version"] == 2
    assert json.loads(ds.attrs["backend"])["name"] == "reference"
    assert json.loads(ds.attrs["session_config"])["outputs"] == list(OUTPUTS)
    # the start state inside the record is the session's: spec with exact arrays, state tensors
    start = src.checkpoint(0)
    assert np.array_equal(start.config.grid.lat, grid(6).lat) and start.state
    # 60 steps = 3 chunks = 2 shards per field: one object per shard, not per chunk
    shards = sorted(p.name for p in (tmp_path / "rank0.zarr" / "hfls" / "c" / "0").iterdir())
    assert shards == ["0", "1"]
    objects = [p for p in (tmp_path / "rank0.zarr").rglob("*") if p.is_file()]
    assert len(objects) <= 3 * len(src.forcing + src.outputs) + 16  # metadata + 2 shards
    ds = open_dataset(url)  # one rank's record opens like a run
    assert ds.hfls.dims == ("time", "cell") and ds["rank"].values.tolist() == [0] * 6
    assert ds.hfls.values[5].tobytes() == bitround(replies[5]["hfls"], 10).tobytes()


def test_every_rank_of_a_run_opens_as_one_dataset() -> None:
    prefix = f"memory://run-{uuid.uuid4().hex}"
    for rank in (0, 1):
        record(f"{prefix}/rank{rank}.zarr", 10, n=3 + rank, run_id="run-a", rank=rank)
    ds = open_dataset(prefix)
    assert ds.sizes == {"time": 10, "cell": 7}
    assert ds["rank"].values.tolist() == [0, 0, 0, 1, 1, 1, 1]


@pytest.mark.parametrize(
    ("options", "field", "rule"),
    [
        ({"keepbits": {"tas": 8}}, "record_options.fields.tas", "lossless_forcing"),
        ({"keepbits": {"landCoverFrac": 8}}, "record_options.fields.landCoverFrac", "known_name"),
        ({"fields": {"hfls": {"id": "pickle"}}}, "record_options.fields.hfls", "codec"),
        ({"fields": {"hfls": {"id": "zstd", "config": {"level": 99}}}},
         "record_options.fields.hfls", "codec_config"),
        ({"fields": {"hfls": {"id": "zstd", "keepbits": 60}}}, "record_options.fields.hfls",
         "keepbits"),
        ({"codec": {"id": "zstd", "keepbits": 5}}, "record_options.codec", "lossless"),
        ({"chunk_bytes": 10}, "record_options.chunk_bytes", "int_range"),
        ({"shard_chunks": 0}, "record_options.shard_chunks", "int_range"),
        ({"chunks": 3}, "record_options", "known_option"),
    ],
)  # fmt: skip
def test_bad_record_options_name_the_field_and_rule(options: dict, field: str, rule: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        RecordOptions.from_dict(options)
    assert (err.value.field, err.value.rule) == (field, rule), str(err.value)


def test_lossy_forcing_is_allowed_when_asked_and_replay_knows() -> None:
    url = memory_url("lossy")
    options = RecordOptions.from_dict({"keepbits": {"tas": 20}, "lossy_forcing": True})
    record(url, 5, record_options=options)
    src = RecordSource(url)
    assert src.keepbits["tas"] == 20 and not src.bitwise_replayable


def test_record_options_cross_the_proto_and_bad_ones_name_the_field() -> None:
    from coupler.wire import spec_proto

    cfg = spec(3, record_url="memory://x", record_options=RecordOptions.compact(chunk_bytes=4096))
    assert spec_proto.from_request(spec_proto.to_request(cfg)).record_options == cfg.record_options
    request = spec_proto.to_request(cfg)
    request.record_options.fields["hfls"].id = "pickle"
    with pytest.raises(InvalidArgument) as err:
        spec_proto.from_request(request)
    assert (err.value.field, err.value.rule) == ("record_options.fields.hfls", "codec")
    request = spec_proto.to_request(cfg)
    request.record_options.fields["tas"].keepbits = 8
    with pytest.raises(InvalidArgument) as err:
        spec_proto.from_request(request)
    assert (err.value.field, err.value.rule) == ("record_options.fields.tas", "lossless_forcing")
