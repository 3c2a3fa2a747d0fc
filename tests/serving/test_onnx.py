"""The ``onnx`` backend (ONNX Runtime in-process): registered, agrees with TorchScript to 1e-5
at hourly and daily steps, selectable by a session over gRPC; precise refusals of a device it
cannot use. (The contract suite runs it in tests/contracts/test_backends.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coupler.core import registry
from coupler.errors import FailedPrecondition
from emulators.compiled.emulator import (
    EmulatorConfig,
    OnnxBackend,
    TorchScriptBackend,
)
from emulators.compiled.onnx_net import OnnxNet, providers_for

from .helpers import AGREEMENT_CASES, agreement, assert_replies_agree, grpc_replies

TOL = 1e-5


@pytest.fixture(scope="module")
def onnx() -> OnnxBackend:
    return OnnxBackend(EmulatorConfig(device="cpu"))


@pytest.fixture(scope="module")
def torchscript() -> TorchScriptBackend:
    return TorchScriptBackend(EmulatorConfig(device="cpu"))


def test_onnx_is_registered_and_identifies_its_artifacts() -> None:
    backend = registry.create("onnx")
    assert isinstance(backend, OnnxBackend) and backend.name == "onnx"
    ident = registry.identity(backend)
    assert ident["name"] == "onnx" and ident["manifest_hash"]
    assert (
        ident["manifest_hash"] == registry.identity(registry.create("torchscript"))["manifest_hash"]
    )


@pytest.mark.parametrize(("dt", "start", "steps"), AGREEMENT_CASES)
def test_agrees_with_torchscript(
    onnx: OnnxBackend, torchscript: TorchScriptBackend, dt: float, start: str, steps: int
) -> None:
    worst, where = agreement(onnx, torchscript, dt, start, steps)
    assert worst <= TOL, f"{where}: relative difference {worst:.2e}"


def test_a_grpc_session_selects_onnx_and_matches_torchscript() -> None:
    described, replies = grpc_replies(("onnx", "torchscript"), client_name="onnx")
    assert "onnx" in described["backends"]
    assert described["details"]["backends"]["onnx"] == "available"
    assert_replies_agree(replies["onnx"], replies["torchscript"], TOL)


def test_the_net_refuses_a_wrong_number_of_inputs(onnx: OnnxBackend) -> None:
    import torch

    net = onnx.flux_for(3600.0).net
    assert isinstance(net, OnnxNet)
    with pytest.raises(ValueError, match=r"expected 3 inputs \(x, h, c\), got 1"):
        net(torch.zeros(2, 42))


def test_a_bad_device_is_refused_by_name() -> None:
    with pytest.raises(RuntimeError, match=r"device: must be 'cpu' or 'cuda\[:N\]', got 'tpu'"):
        providers_for("tpu")
    with pytest.raises(ValueError, match="device: must be 'cpu', 'cuda' or 'cuda:N'"):
        registry.BackendOptions(device="tpu")


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
def test_cuda_without_a_gpu_is_failed_precondition_naming_the_device() -> None:
    for name in ("onnx", "torchscript", "aoti"):
        with pytest.raises(FailedPrecondition, match="device: 'cuda'") as err:
            registry.create(name, registry.BackendOptions(device="cuda"))
        assert (err.value.field, err.value.rule) == ("backend", "available")


@pytest.fixture()
def no_triton_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("LANDCOUPLER_TRITON_URL", raising=False)
    yield


def test_triton_without_a_url_is_failed_precondition(no_triton_url: None) -> None:
    with pytest.raises(FailedPrecondition, match=r"triton_url: no Triton server configured"):
        registry.create("triton")
    with pytest.raises(FailedPrecondition, match=r"triton_url: no Triton server at 127.0.0.1:9"):
        registry.create("triton", registry.BackendOptions(triton_url="127.0.0.1:9"))
