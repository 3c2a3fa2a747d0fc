"""The reference model's fingerprint: stable, sensitive to physics that matters to training,
in the trajectory cache's key, and recorded by every shipped artifact that learned from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from emulators import physics
from emulators.manifest import Manifest
from emulators.recipes import ARTIFACTS
from emulators.reference import fingerprint as fp
from emulators.training.data import SourceSpec, cache_name, simulate

#: shipped artifacts trained on reference trajectories before fingerprints were recorded, with
#: why they are kept (each must really lack one: retrained artifacts leave this list)
UNRECORDED: dict[str, str] = {}


def test_fingerprint_is_the_record_s_and_machine_independent() -> None:
    """The fingerprint is the hash of the recorded probe, which today's reference reproduces
    (within the tolerance): the same value on every machine that computes the same physics."""
    record = fp.recorded()
    assert fp.deviation(fp.probe(), record) <= fp.TOLERANCE
    assert fp.compute() == fp.fingerprint() == fp._digest(record)
    assert len(fp.fingerprint()) == 16 and not fp.fingerprint().startswith("x")


def test_last_bit_differences_keep_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative change of 1e-11 in one forcing field changed the first version's hash of
    rounded values (the same code gave two fingerprints on two machines); it stays within the
    tolerance, so the fingerprint is kept."""
    plain = fp._forcing

    def nudged(step: int, dt: float) -> dict[str, torch.Tensor]:
        f = plain(step, dt)
        return {**f, "rlds": f["rlds"] * (1 + 1e-11)}

    monkeypatch.setattr(fp, "_forcing", nudged)
    now = fp.probe()
    assert 0 < fp.deviation(now, fp.recorded()) <= fp.TOLERANCE
    assert fp.compute() == fp._digest(fp.recorded())


def _only(values: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k: v for k, v in values.items() if k.startswith(prefix)}


def test_roughness_floor_changes_it_through_the_2m_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The physics change that went unnoticed (2-m wind over tall trees) takes the reference
    outside the record, and it is the 2-m probe that sees it: at 10 m the floor never acts."""
    record = fp.recorded()
    monkeypatch.setattr(physics, "ROUGHNESS_HEIGHT_FLOOR", 0.0)  # the log profile unfloored
    now = fp.probe()
    assert fp.deviation(_only(now, "2m/"), _only(record, "2m/")) > 1e3 * fp.TOLERANCE
    assert fp.deviation(_only(now, "10m/"), _only(record, "10m/")) == 0.0
    changed = fp.compute()
    assert changed.startswith("x") and changed != fp._digest(record)


def test_a_small_constant_change_changes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from emulators import constants

    monkeypatch.setattr(constants, "VON_KARMAN", constants.VON_KARMAN * 0.99)
    assert fp.deviation(fp.probe(), fp.recorded()) > 100 * fp.TOLERANCE
    assert fp.compute().startswith("x")


def test_deviation_refuses_other_fields_or_shapes() -> None:
    record = fp.recorded()
    name = sorted(record)[0]
    assert fp.deviation({**record, "extra": record[name]}, record) == np.inf
    assert fp.deviation({**record, name: record[name][:-1]}, record) == np.inf


def test_write_records_the_probe(tmp_path: Path) -> None:
    """``write`` records the probe as computed here and returns the hash of what it wrote; the
    values are the committed record's within the tolerance (not bit for bit: the float32 record
    of another CPU may differ in last bits, which is why the fingerprint is the record's hash)."""
    path = tmp_path / "probe.npz"
    digest = fp.write(path)
    with np.load(path) as f:
        written = {k: f[k] for k in f.files}
    assert digest == fp._digest(written)
    assert written.keys() == fp.recorded().keys()
    assert fp.deviation(written, fp.recorded()) <= fp.TOLERANCE


def test_teacher_line() -> None:
    today = fp.fingerprint()
    assert fp.teacher({"command": "lulc"}) is None
    line = fp.teacher({"sources": [], "reference_fingerprint": today})
    assert line == f"teacher: the reference model of today (fingerprint {today})"
    stale = fp.teacher({"sources": [], "reference_fingerprint": "0" * 16})
    assert stale is not None and stale.startswith("WARNING: trained against reference fingerprint")
    assert today in stale
    unknown = fp.teacher({"sources": []})
    assert unknown is not None and "records no reference fingerprint" in unknown


def test_trajectory_cache_is_keyed_by_it(tmp_path: Path) -> None:
    spec = SourceSpec("synthetic", seed=5, cells=1, days=2, spinup_days=0)
    name = cache_name(spec)
    assert name.endswith(f"-ref{fp.fingerprint()}.npz")
    first = simulate(spec, progress=False, cache=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    # trajectories of another reference (another fingerprint, or a cache from before
    # fingerprints: no suffix) are not read: altered copies there leave the result unchanged
    altered = dataclasses.replace(
        first, outputs={**first.outputs, "hfss": first.outputs["hfss"] + 50.0}
    )
    (tmp_path / name).unlink()
    altered.save(tmp_path / name.replace(fp.fingerprint(), "f" * 16))
    altered.save(tmp_path / name.replace(f"-ref{fp.fingerprint()}", ""))
    again = simulate(spec, progress=False, cache=tmp_path)
    assert (tmp_path / name).exists()
    np.testing.assert_array_equal(again.outputs["hfss"], first.outputs["hfss"])
    # and the file of today's reference is what is read
    altered.save(tmp_path / name)
    read = simulate(spec, progress=False, cache=tmp_path)
    np.testing.assert_array_equal(read.outputs["hfss"], first.outputs["hfss"] + 50.0)


@pytest.mark.parametrize(
    "directory", sorted(p.parent.name for p in Path(ARTIFACTS).glob("*/manifest.json"))
)
def test_shipped_artifacts_name_their_teacher(directory: str) -> None:
    training = Manifest.load(Path(ARTIFACTS) / directory).training
    if "sources" not in training:  # not trained on reference trajectories (lulc-unet)
        assert directory not in UNRECORDED
        return
    recorded = training.get("reference_fingerprint")
    if directory in UNRECORDED:
        assert recorded is None, f"{directory} records a fingerprint: remove it from UNRECORDED"
    else:
        assert recorded == fp.fingerprint(), (
            f"{directory} was trained against reference {recorded}, today's is "
            f"{fp.fingerprint()}: retrain it (landcoupler emulators train)"
        )
