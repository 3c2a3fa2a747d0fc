"""Every land backend passes the contract: the reference model and the emulator backends
(TorchScript, AOTInductor, ONNX Runtime, the fused native operator; ``transformer``:
TorchScript with ``flux-transformer``, hourly only), at hourly steps and at daily steps (the
emulator backends then use ``flux_lstm_daily``), the hybrid backend (the reference with the
``canopy-mlp`` network; TorchScript and ONNX Runtime), and replay as a land backend, fed the
forcing of the record it serves. The Triton backend runs the same suite in tests/triton
(``make test-triton``)."""

from __future__ import annotations

import uuid

import numpy as np
import torch

from coupler.core.manager import SessionManager
from coupler.replay import RecordBackend
from coupler.spec import GridSpec, SessionSpec
from emulators.compiled.emulator import (
    AOTIBackend,
    EmulatorConfig,
    FusedBackend,
    OnnxBackend,
    TorchScriptBackend,
)
from emulators.compiled.hybrid import HybridBackend
from emulators.compiled.transformer import TransformerBackend
from emulators.protocol import LandBackend, LandStatic, StepClock
from emulators.reference import ReferenceBackend
from emulators.variables import LAND_OUTPUTS

from .backend_contract import LandBackendContract, contract_static


class TestReferenceBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return ReferenceBackend()


class TestTorchScriptBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return TorchScriptBackend()


class TestTorchScriptBackendAllTiles(LandBackendContract):
    """Every tile computed: every (member, cell, tile) entry is a row, so the step runs on
    slices of the state and its results become the new state (no gather or scatter)."""

    def make_backend(self) -> LandBackend:
        return TorchScriptBackend(EmulatorConfig(all_tiles=True))


class TestAOTIBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return AOTIBackend()


class TestOnnxBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return OnnxBackend()


class TestFusedBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return FusedBackend()


class TestTransformerBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return TransformerBackend()


class TestHybridBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return HybridBackend()


class TestHybridBackendOnnx(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return HybridBackend(loader="onnx")


class _Daily:
    dt = 86_400.0
    start = "2001-06-27T00:00:00"
    steps = 8


class TestReferenceBackendDaily(_Daily, LandBackendContract):
    def make_backend(self) -> LandBackend:
        return ReferenceBackend()


class TestHybridBackendDaily(_Daily, LandBackendContract):
    def make_backend(self) -> LandBackend:
        return HybridBackend()


class TestTorchScriptBackendDaily(_Daily, LandBackendContract):
    def make_backend(self) -> LandBackend:
        return TorchScriptBackend()


class TestAOTIBackendDaily(_Daily, LandBackendContract):
    def make_backend(self) -> LandBackend:
        return AOTIBackend()


class TestOnnxBackendDaily(_Daily, LandBackendContract):
    def make_backend(self) -> LandBackend:
        return OnnxBackend()


class TestFusedBackendDaily(_Daily, LandBackendContract):
    def make_backend(self) -> LandBackend:
        return FusedBackend()


class TestRecordBackend(LandBackendContract):
    """Replay as a land backend (``coupler.replay.RecordBackend``). A record answers only its
    own scenario, so this subclass records one first (the reference model, one member, the
    contract's cells, start and step, every land output, ``steps + 2`` steps) and feeds the
    recorded forcing instead of the contract's per-member random forcing; everything else
    (static fields, clocks, the checks) is the contract's."""

    _recorded: RecordBackend
    changes_cover = False

    def make_backend(self) -> LandBackend:
        n, steps = self.n_cells, self.steps + 2
        static = contract_static(n, 1, 0)
        url = f"memory://contract-record-{uuid.uuid4().hex}.zarr"
        spec = SessionSpec(
            grid=GridSpec(lat=static.lat.numpy(), lon=static.lon.numpy()),
            start=np.datetime64(self.start, "s"), timestep=int(self.dt),
            outputs=LAND_OUTPUTS, land_cover=static.cover.numpy(), record_url=url,
        )  # fmt: skip
        manager = SessionManager()
        session = manager.open(spec, "contract")
        clock = StepClock(0, np.datetime64(self.start), self.dt)
        for i in range(steps):
            forcing = self.recorded_scenario(static, clock)
            session.step(i, {k: v[0].numpy() for k, v in forcing.items()})
            clock = clock.advance()
        manager.close(session.id, "contract")
        type(self)._recorded = RecordBackend(url)
        return type(self)._recorded

    def recorded_scenario(self, static: LandStatic, clock: StepClock) -> dict[str, torch.Tensor]:
        return LandBackendContract.forcing(self, static, clock, 1)

    def forcing(self, static: LandStatic, clock: StepClock, seed: int) -> dict[str, torch.Tensor]:
        return {
            k: v.clone() for k, v in self._recorded.forcing(clock.index, static.n_members).items()
        }
