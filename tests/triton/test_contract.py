"""The ``triton`` backend passes the land-backend contract (hourly and daily) against the real
server, agrees with the in-process TorchScript backend to 1e-5, registers its shared memory
once and unregisters it at close, falls back to plain tensors, and refuses a served model that
is not its local artifact."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tritonclient.grpc as grpcclient

from coupler.core import registry
from emulators.compiled.emulator import EmulatorConfig, TorchScriptBackend
from emulators.manifest import Manifest
from emulators.protocol import LandBackend
from emulators.serving.triton_backend import TritonBackend, TritonNet
from tests.contracts.backend_contract import LandBackendContract, contract_static
from tests.serving.helpers import run, worst_difference


class TestTritonBackend(LandBackendContract):
    def make_backend(self) -> LandBackend:
        return TritonBackend()  # $LANDCOUPLER_TRITON_URL, set by the conftest

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls) -> Iterator[LandBackend]:
        backend = TritonBackend()
        yield backend
        backend.close()


class TestTritonBackendDaily(TestTritonBackend):
    dt = 86_400.0
    start = "2001-06-27T00:00:00"
    steps = 8


def _regions(url: str) -> set[str]:
    with grpcclient.InferenceServerClient(url) as client:
        status = client.get_system_shared_memory_status(as_json=True)
    return {r["name"] for r in status.get("regions", {}).values()} if status else set()


@pytest.mark.parametrize(
    ("dt", "start", "steps"),
    [(3600.0, "2001-06-30T18:00:00", 30), (86_400.0, "2001-06-27T00:00:00", 10)],
)
def test_agrees_with_in_process_torchscript_to_1e5(
    triton_url: str, dt: float, start: str, steps: int
) -> None:
    static = contract_static(40, 2, seed=9)
    local = run(TorchScriptBackend(EmulatorConfig(device="cpu")), static, steps, dt, start)
    for shared in (True, False):
        backend = TritonBackend(url=triton_url, shared_memory=shared)
        try:
            worst, where = worst_difference(run(backend, static, steps, dt, start), local)
        finally:
            backend.close()
        assert worst <= 1e-5, f"shared_memory={shared}: {where} differs by {worst:.2e}"


def test_shared_memory_is_registered_once_and_unregistered_at_close(triton_url: str) -> None:
    before = _regions(triton_url)
    backend = TritonBackend(url=triton_url)
    assert backend.shared_memory  # loopback
    static = contract_static(12, 1, seed=2)
    run(backend, static, 3, 3600.0, "2001-07-01T10:00:00")
    after_first = _regions(triton_url) - before
    assert after_first and all(n.startswith("lc_flux_lstm_") for n in after_first)
    assert len(after_first) == 2  # one input and one output region of the hourly flux model
    run(backend, static, 5, 3600.0, "2001-07-01T13:00:00")
    assert _regions(triton_url) - before == after_first  # reused, not re-registered
    backend.close()
    assert _regions(triton_url) - before == set()


def test_a_remote_url_uses_plain_tensors_and_the_env_forces_either(
    triton_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = triton_url.rsplit(":", 1)[1]
    backend = TritonBackend(url=f"0.0.0.0:{port}")  # not a loopback name: treated as remote
    backend.close()
    assert not backend.shared_memory
    monkeypatch.setenv("LANDCOUPLER_TRITON_SHM", "0")
    backend = TritonBackend(url=triton_url)
    backend.close()
    assert not backend.shared_memory
    monkeypatch.setenv("LANDCOUPLER_TRITON_SHM", "yes")
    with pytest.raises(
        RuntimeError, match="LANDCOUPLER_TRITON_SHM: must be auto, 0 or 1, got 'yes'"
    ):
        TritonBackend(url=triton_url)
    backend.close()  # idempotent


def test_a_served_model_that_is_not_the_local_artifact_is_refused(triton_url: str) -> None:
    from emulators.compiled.emulator import ARTIFACTS

    lai = Manifest.load(ARTIFACTS / "lai")
    with grpcclient.InferenceServerClient(triton_url) as client:
        with pytest.raises(RuntimeError, match="'flux_lstm' does not serve the local lai"):
            TritonNet(client, "flux_lstm", lai, shared_memory=False)


def test_registered_and_available(triton_url: str) -> None:
    backend = registry.create("triton", registry.BackendOptions(triton_url=triton_url))
    try:
        assert isinstance(backend, TritonBackend) and backend.name == "triton"
        ts = registry.identity(registry.create("torchscript"))
        assert registry.identity(backend)["manifest_hash"] == ts["manifest_hash"]
    finally:
        backend.close()
