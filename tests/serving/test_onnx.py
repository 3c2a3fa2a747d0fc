"""The ``onnx`` backend (ONNX Runtime in-process): registered, agrees with TorchScript to 1e-5
at hourly and daily steps, selectable by a session over gRPC; precise refusals of a device it
cannot use. (The contract suite runs it in tests/contracts/test_backends.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from coupler.client import CouplerClient
from coupler.core import registry
from coupler.errors import FailedPrecondition
from coupler.wire.server import ServerConfig, start_service
from emulators.compiled.emulator import (
    EmulatorConfig,
    OnnxBackend,
    TorchScriptBackend,
)
from emulators.compiled.onnx_net import OnnxNet, providers_for
from tests.contracts.backend_contract import contract_static

from .helpers import run, worst_difference

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


@pytest.mark.parametrize(
    ("dt", "start", "steps"),
    [(3600.0, "2001-06-30T18:00:00", 30), (86_400.0, "2001-06-27T00:00:00", 12)],
)
def test_agrees_with_torchscript(
    onnx: OnnxBackend, torchscript: TorchScriptBackend, dt: float, start: str, steps: int
) -> None:
    static = contract_static(24, 2, seed=4)
    worst, where = worst_difference(
        run(onnx, static, steps, dt, start), run(torchscript, static, steps, dt, start)
    )
    assert worst <= TOL, f"{where}: relative difference {worst:.2e}"


def test_a_grpc_session_selects_onnx_and_matches_torchscript() -> None:
    svc = start_service("127.0.0.1:0", ServerConfig(max_workers=4))
    try:
        lat, lon = np.linspace(-30.0, 60.0, 8), np.linspace(-120.0, 100.0, 8)
        replies: dict[str, list[dict[str, np.ndarray]]] = {}
        with CouplerClient(f"127.0.0.1:{svc.port}", client_name="onnx", retries=0) as client:
            described = client.describe()
            assert "onnx" in described["backends"]
            assert described["details"]["backends"]["onnx"] == "available"
            for backend in ("onnx", "torchscript"):
                session = client.open_session(
                    lat=lat, lon=lon, start="2001-06-01T00:00:00", timestep=3600,
                    outputs=["hfls", "hfss", "ts", "gpp"], backend=backend, land_cover="grass",
                )  # fmt: skip
                replies[backend] = [session.step(i, _forcing(i, 8)) for i in range(12)]
                session.close()
    finally:
        svc.stop(grace=1.0, checkpoint=False)
    for a, b in zip(replies["onnx"], replies["torchscript"], strict=True):
        for name in ("hfls", "hfss", "ts", "gpp"):
            scale = max(float(np.abs(b[name]).max()), 1e-30)
            assert float(np.abs(a[name] - b[name]).max()) / scale <= TOL, name


def _forcing(i: int, n: int) -> dict[str, np.ndarray]:
    day = max(0.0, float(np.cos((i % 24 - 12.0) / 12.0 * np.pi)))
    ramp = np.linspace(0.0, 1.0, n)
    return {
        "tas": 290.0 + 5.0 * day + ramp, "huss": 0.007 + 0.001 * ramp,
        "ps": np.full(n, 99_000.0), "sfcWind": 2.0 + ramp, "pr": np.where(ramp > 0.7, 3e-5, 0.0),
        "rsds": 800.0 * day * (0.7 + 0.3 * ramp), "rlds": 330.0 + 10.0 * ramp,
    }  # fmt: skip


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
