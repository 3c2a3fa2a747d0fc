"""Device choice: ``landcoupler serve --device`` and ``--triton-url`` reach the backends
(``registry.BackendOptions``); a device this machine lacks is refused by name before the server
starts. The CUDA checks (CUDA backends agree with CPU to 1e-5, a gRPC session on ``serve
--device cuda``) are marked ``cuda`` and skipped, saying so, without a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from coupler.cli import main
from coupler.client import CouplerClient
from coupler.core import registry
from coupler.wire.server import ServerConfig, start_service
from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig
from emulators.compiled.onnx_net import providers_for
from tests.contracts.backend_contract import contract_static

from .helpers import run, worst_difference

NO_CUDA = not torch.cuda.is_available()


def test_options_reach_the_backends_through_the_server_config() -> None:
    options = registry.BackendOptions(device="cpu", triton_url="127.0.0.1:8001")
    svc = start_service("127.0.0.1:0", ServerConfig(backend_options=options))
    try:
        assert svc.manager.backend_options == options
        backend = svc.manager._backend("onnx")
        assert isinstance(backend, EmulatorBackend) and backend.device == torch.device("cpu")
    finally:
        svc.stop(grace=1.0, checkpoint=False)


def test_bad_options_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="triton_url: must be HOST:PORT, got 'triton'"):
        registry.BackendOptions(triton_url="triton")
    with pytest.raises(ValueError, match="device: must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        registry.BackendOptions(device="gpu")


@pytest.mark.skipif(not NO_CUDA, reason="checks the refusal on a machine without CUDA")
def test_serve_device_cuda_without_a_gpu_exits_with_a_precise_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--address", "127.0.0.1:0", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert (
        "landcoupler serve: error: --device: 'cuda' but torch.cuda.is_available() is false" in err
    )
    assert main(["serve", "--address", "127.0.0.1:0", "--device", "tpu"]) == 2
    assert "device: must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'" in capsys.readouterr().err


@pytest.mark.skipif(not NO_CUDA, reason="checks the refusal on a machine without CUDA")
def test_serve_device_defaults_to_landcoupler_device(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gpu overlay's ConfigMap sets LANDCOUPLER_DEVICE=cuda instead of a flag."""
    monkeypatch.setenv("LANDCOUPLER_DEVICE", "cuda")
    assert main(["serve", "--address", "127.0.0.1:0"]) == 2
    assert "--device: 'cuda' but torch.cuda.is_available() is false" in capsys.readouterr().err


# ---- on a GPU --------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.parametrize("loader", ["torchscript", "onnx"])
def test_cuda_backends_agree_with_cpu(loader: str) -> None:
    if loader == "onnx":
        try:
            providers_for("cuda")
        except RuntimeError as exc:
            pytest.skip(f"onnxruntime here has no CUDA execution provider: {exc}")
    static = contract_static(64, 2, seed=21)
    start = "2001-06-30T18:00:00"
    gpu = EmulatorBackend(EmulatorConfig(device="cuda"), loader=loader)
    cpu = EmulatorBackend(EmulatorConfig(device="cpu"), loader=loader)
    worst, where = worst_difference(
        run(gpu, static, 12, 3600.0, start), run(cpu, static, 12, 3600.0, start)
    )
    assert worst <= 1e-5, f"{loader}: {where} differs by {worst:.2e}"


@pytest.mark.cuda
def test_a_session_on_serve_device_cuda_matches_cpu() -> None:
    import numpy as np

    replies = {}
    for device in ("cuda", "cpu"):
        options = registry.BackendOptions(device=device)
        svc = start_service("127.0.0.1:0", ServerConfig(backend_options=options))
        try:
            with CouplerClient(f"127.0.0.1:{svc.port}", client_name="gpu", retries=0) as client:
                session = client.open_session(
                    lat=np.array([45.0, 10.0]), lon=np.array([5.0, 20.0]),
                    start="2001-06-01T00:00:00", timestep=3600, outputs=["hfls", "hfss"],
                    backend="torchscript", land_cover="grass",
                )  # fmt: skip
                forcing = {
                    "tas": np.array([293.0, 299.0]), "huss": np.array([0.008, 0.012]),
                    "ps": np.array([98_000.0, 99_000.0]), "sfcWind": np.array([3.0, 2.0]),
                    "pr": np.zeros(2), "rsds": np.array([600.0, 700.0]),
                    "rlds": np.array([330.0, 360.0]),
                }  # fmt: skip
                replies[device] = [session.step(i, forcing) for i in range(6)]
                session.close()
        finally:
            svc.stop(grace=1.0, checkpoint=False)
    for a, b in zip(replies["cuda"], replies["cpu"], strict=True):
        for name in ("hfls", "hfss"):
            scale = max(float(np.abs(b[name]).max()), 1e-30)
            assert float(np.abs(a[name] - b[name]).max()) / scale <= 1e-5, name


@pytest.mark.skipif(not NO_CUDA, reason="checks the refusal on a machine without CUDA")
def test_bench_gpu_without_a_gpu_fails_instead_of_reporting_cpu_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = f"{tmp_path}/gpu.json"
    assert main(["bench", "gpu", "--json", out]) == 2
    assert "bench gpu: needs CUDA" in capsys.readouterr().err
    assert not Path(out).exists()
