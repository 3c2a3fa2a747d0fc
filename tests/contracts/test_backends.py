"""Every land backend passes the contract: the reference model and the emulator backends."""

from __future__ import annotations

from emulators.backend import LandBackend
from emulators.backends.emulator import AOTIBackend, TorchScriptBackend
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
