"""Every land backend passes the session data-assimilation contract (``da_contract``): the
reference model, the emulator backends (TorchScript, AOTInductor, ONNX Runtime, and TorchScript
with ``flux-transformer``) and the hybrid backend, whose leaf carbon and soil water are the
analysed state as the reference model's are."""

from __future__ import annotations

from .da_contract import SessionDAContract


class TestReferenceSessionDA(SessionDAContract):
    backend = "reference"


class TestTorchScriptSessionDA(SessionDAContract):
    backend = "torchscript"


class TestAOTISessionDA(SessionDAContract):
    backend = "aoti"


class TestOnnxSessionDA(SessionDAContract):
    backend = "onnx"


class TestTransformerSessionDA(SessionDAContract):
    backend = "transformer"


class TestHybridSessionDA(SessionDAContract):
    backend = "hybrid"
