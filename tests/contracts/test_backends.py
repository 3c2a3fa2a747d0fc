"""Every land backend passes the contract: the reference model and the emulator backends
(TorchScript, AOTInductor, ONNX Runtime), at hourly steps and at daily steps (the emulator
backends then use ``flux_lstm_daily``). The Triton backend runs the same suite in
tests/triton (``make test-triton``)."""

from __future__ import annotations

from emulators.compiled.emulator import AOTIBackend, OnnxBackend, TorchScriptBackend
from emulators.protocol import LandBackend
from emulators.reference import ReferenceBackend

from .backend_contract import LandBackendContract


class TestReferenceBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return ReferenceBackend()


class TestTorchScriptBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return TorchScriptBackend()


class TestAOTIBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return AOTIBackend()


class TestOnnxBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return OnnxBackend()


class _Daily:
    dt = 86_400.0
    start = "2001-06-27T00:00:00"
    steps = 8


class TestReferenceBackendDaily(_Daily, LandBackendContract):
    def make_backend(self) -> LandBackend:
        return ReferenceBackend()


class TestTorchScriptBackendDaily(_Daily, LandBackendContract):
    def make_backend(self) -> LandBackend:
        return TorchScriptBackend()


class TestAOTIBackendDaily(_Daily, LandBackendContract):
    def make_backend(self) -> LandBackend:
        return AOTIBackend()


class TestOnnxBackendDaily(_Daily, LandBackendContract):
    def make_backend(self) -> LandBackend:
        return OnnxBackend()
