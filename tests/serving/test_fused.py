"""The ``fused`` backend (the flux LSTMs in one native CPU operator, compiled here on first
use): the operator equals the eager network to float32 round-off on random weights for every
block cut, and a closed-form case exactly; the backend is registered, agrees with TorchScript
to 1e-5 at hourly and daily steps, is selectable by a session over gRPC; every bad input is
refused by name. (The contract suite runs it in tests/contracts/test_backends.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from coupler.core import registry
from emulators.compiled import fused
from emulators.compiled.emulator import EmulatorConfig, FusedBackend, TorchScriptBackend
from emulators.compiled.fused import FusedFluxLSTM, NativeBuildError
from emulators.nets.flux import FluxLSTMConfig

from .helpers import AGREEMENT_CASES, agreement, assert_replies_agree, grpc_replies

TOL = 1e-5


@pytest.fixture(scope="module")
def backend() -> FusedBackend:
    return FusedBackend(EmulatorConfig(device="cpu"))


@pytest.fixture(scope="module")
def torchscript() -> TorchScriptBackend:
    return TorchScriptBackend(EmulatorConfig(device="cpu"))


def _net(seed: int, hidden: int = 8, tasks: int = 3) -> torch.nn.Module:
    cfg = FluxLSTMConfig(n_features=6, n_outputs=tasks, hidden=hidden, head_hidden=4)
    net = cfg.build().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)
        net.inputs.set(torch.randn(6, generator=g) * 50, torch.rand(6, generator=g) * 10 + 0.5)
        net.outputs.set(torch.randn(tasks, generator=g) * 100, torch.rand(tasks, generator=g) + 1)
    return net


def _inputs(n: int, hidden: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 6, generator=g) * 60, torch.randn(n, hidden, generator=g),
            torch.randn(n, hidden, generator=g) * 3)  # fmt: skip


@pytest.mark.parametrize(("rows", "block"), [(1, 256), (37, 8), (300, 256), (513, 64)])
def test_the_operator_equals_the_eager_network(rows: int, block: int) -> None:
    net = _net(seed=rows)
    cfg = {"n_features": 6, "hidden": 8}
    op = FusedFluxLSTM(cfg, dict(net.state_dict()), block=block)
    x, h, c = _inputs(rows, 8, seed=block)
    with torch.no_grad():
        want = net(x, h, c)
    got = op(x, h, c)
    for name, a, b in zip(("y", "h", "c"), got, want, strict=True):
        assert a.shape == b.shape and a.dtype == torch.float32, name
        scale = float(b.abs().max())
        assert float((a - b).abs().max()) <= 4e-6 * scale, (name, float((a - b).abs().max()))


def test_zero_weights_give_the_closed_form_step() -> None:
    """All weights and biases 0: every gate is σ(0) = 1/2 and u = tanh(0) = 0, so c' = c / 2,
    h' = tanh(c / 2) / 2; SiLU(0) = 0 makes every output its normalisation's mean."""
    net = _net(seed=1)
    weights = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    weights["inputs.std"] = torch.ones(6)
    weights["outputs.mean"] = torch.tensor([1.5, -2.0, 300.0])
    weights["outputs.std"] = torch.ones(3)
    op = FusedFluxLSTM({"n_features": 6, "hidden": 8}, weights, block=16)
    x, h, c = _inputs(40, 8, seed=3)
    y, h2, c2 = op(x, h, c)
    torch.testing.assert_close(c2, c / 2, rtol=2e-7, atol=0)
    torch.testing.assert_close(h2, torch.tanh(c / 2) / 2, rtol=1e-6, atol=1e-7)
    assert torch.equal(y, weights["outputs.mean"].expand(40, 3))


def test_h_and_c_follow_a_zero_row_so_the_dense_state_needs_no_join() -> None:
    from emulators.compiled import row_step

    net = _net(seed=4)
    op = FusedFluxLSTM({"n_features": 6, "hidden": 8}, dict(net.state_dict()), block=16)
    _, h, c = op(*_inputs(40, 8, seed=5))
    slots = torch.tensor([0, 3, 0, 1, 40, 0])  # dense entries: zero row, or rows 2, 0, 39
    for rows in (h, c):
        table = row_step._after_zero_row(rows)
        assert table is not None and table.data_ptr() + 4 * 8 == rows.data_ptr()
        dense, joined = row_step.dense_rows([rows], slots)
        assert joined.data_ptr() == rows.data_ptr()  # no copy of the rows
        want = torch.cat([torch.zeros(1, 8), rows]).index_select(0, slots)
        assert torch.equal(dense, want)


def test_no_rows_give_empty_outputs() -> None:
    net = _net(seed=2)
    op = FusedFluxLSTM({"n_features": 6, "hidden": 8}, dict(net.state_dict()))
    y, h, c = op(torch.zeros(0, 6), torch.zeros(0, 8), torch.zeros(0, 8))
    assert (y.shape, h.shape, c.shape) == ((0, 3), (0, 8), (0, 8))


def test_bad_inputs_and_weights_are_refused_by_name() -> None:
    net = _net(seed=3)
    weights = dict(net.state_dict())
    op = FusedFluxLSTM({"n_features": 6, "hidden": 8}, weights)
    x, h, c = _inputs(5, 8, seed=0)
    with pytest.raises(RuntimeError, match="x must be float32, got Double"):
        op(x.double(), h, c)
    with pytest.raises(RuntimeError, match=r"h has shape \[5, 7\], expected size 8 in dimension 1"):
        op(x, h[:, :7], c)
    with pytest.raises(RuntimeError, match=r"c has shape \[4, 8\], expected size 5 in dimension 0"):
        op(x, h, c[:4])
    with pytest.raises(RuntimeError, match=r"x has shape \[5, 5\], expected size 6"):
        op(x[:, :5], h, c)
    with pytest.raises(ValueError, match="block: must be an integer in"):
        FusedFluxLSTM({"n_features": 6, "hidden": 8}, weights, block=0)
    with pytest.raises(ValueError, match=r"lack \['head_b2'\]"):
        FusedFluxLSTM({"n_features": 6, "hidden": 8},
                      {k: v for k, v in weights.items() if k != "head_b2"})  # fmt: skip
    with pytest.raises(ValueError, match=r"wh.weight has shape \(32, 8\), the config says"):
        FusedFluxLSTM({"n_features": 6, "hidden": 9}, weights)
    with pytest.raises(ValueError, match="physics=true"):
        FusedFluxLSTM({"n_features": 6, "hidden": 8, "physics": True}, weights)
    # the state is the caller's: a refused call changed nothing
    assert torch.equal(h, _inputs(5, 8, seed=0)[1])


def test_a_failed_build_names_the_compiler_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "flux_lstm.cpp"
    broken.write_text("this is not C++;\n")
    monkeypatch.setattr(fused, "SOURCE", broken)
    with pytest.raises(NativeBuildError, match=r"compiling flux_lstm.cpp with .* failed"):
        fused.library(tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.so"))  # nothing half-written is kept


def test_no_compiler_is_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setattr(fused.shutil, "which", lambda name: None)
    with pytest.raises(NativeBuildError, match=r"no C\+\+ compiler found"):
        fused.compiler()


def test_the_cache_is_keyed_and_reused(tmp_path: Path) -> None:
    first = fused.library(tmp_path)
    assert first.name.startswith("flux_lstm-") and first.suffix == ".so"
    stamp = first.stat().st_mtime_ns
    assert fused.library(tmp_path) == first and first.stat().st_mtime_ns == stamp


def test_fused_is_registered_and_serves_the_torchscript_weights() -> None:
    made = registry.create("fused")
    assert isinstance(made, FusedBackend) and made.name == "fused"
    net = made.flux_for(3600.0).net
    assert isinstance(net, FusedFluxLSTM)
    ident = registry.identity(made)
    assert (
        ident["manifest_hash"] == registry.identity(registry.create("torchscript"))["manifest_hash"]
    )


@pytest.mark.parametrize(("dt", "start", "steps"), AGREEMENT_CASES)
def test_agrees_with_torchscript(
    backend: FusedBackend, torchscript: TorchScriptBackend, dt: float, start: str, steps: int
) -> None:
    worst, where = agreement(backend, torchscript, dt, start, steps)
    assert worst <= TOL, f"{where}: relative difference {worst:.2e}"


def test_a_grpc_session_selects_fused_and_matches_torchscript() -> None:
    described, replies = grpc_replies(("fused", "torchscript"), client_name="fused")
    assert described["details"]["backends"]["fused"] == "available"
    assert_replies_agree(replies["fused"], replies["torchscript"], TOL)


def test_without_a_compiler_the_backend_is_unavailable_naming_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from coupler.errors import FailedPrecondition

    monkeypatch.setattr(fused.shutil, "which", lambda name: None)
    fused.operator.cache_clear()
    try:
        with pytest.raises(FailedPrecondition, match="'fused' is not available on this server: "
                           "fused: no C\\+\\+ compiler found") as err:  # fmt: skip
            registry.create("fused")
        assert (err.value.field, err.value.rule) == ("backend", "available")
    finally:
        fused.operator.cache_clear()  # the next user loads the (already loaded) library again


def test_a_device_other_than_the_cpu_is_refused_by_name() -> None:
    from emulators.compiled.artifacts import load_artifact
    from emulators.manifest import Manifest

    directory = Path(fused.__file__).parents[1] / "artifacts" / "flux_lstm"
    with pytest.raises(RuntimeError, match="device: the fused backend runs on the CPU only"):
        load_artifact(Manifest.load(directory), directory, "fused", "cuda")
