"""The ensemble of ``flux_lstm`` networks merged into one wider ``flux_lstm``
(``emulators.nets.flux_ensemble``): equal to the mean of its members, step after step."""

from __future__ import annotations

import pytest
import torch

from emulators.nets.flux import FluxLSTM, FluxLSTMConfig
from emulators.nets.flux_ensemble import merge, offsets


def member(seed: int, hidden: int = 6, head: int = 4, physics: bool = False) -> FluxLSTM:
    torch.manual_seed(seed)
    net = FluxLSTMConfig(hidden=hidden, head_hidden=head, physics=physics).build()
    f, t = net.inputs.mean.shape[0], net.tasks
    with torch.no_grad():  # trained-looking weights and each member's own normalisation
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    net.inputs.set(torch.randn(f) * 10, torch.rand(f) * 5 + 0.5)
    net.outputs.set(torch.randn(t) * 50, torch.rand(t) * 80 + 10)
    return net.eval()


def features(n: int, f: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, f, generator=g) * 5


def run(nets: list[FluxLSTM], merged: FluxLSTM, steps: int = 12, n: int = 50) -> None:
    """Steps the members and the merged network side by side; outputs equal the members' mean
    and each member's state is its slice of the merged one."""
    off = offsets(nets)
    hs = [torch.zeros(n, m.hidden) for m in nets]
    cs = [torch.zeros(n, m.hidden) for m in nets]
    h, c = torch.zeros(n, off[-1]), torch.zeros(n, off[-1])
    f = nets[0].inputs.mean.shape[0]
    with torch.no_grad():
        for i in range(steps):
            x = features(n, f, i)
            ys = []
            for k, m in enumerate(nets):
                y, hs[k], cs[k] = m(x, hs[k], cs[k])
                ys.append(y)
            y, h, c = merged(x, h, c)
            mean = torch.stack(ys).mean(0)
            scale = mean.abs().amax() + 1.0
            assert (y - mean).abs().amax() / scale < 2e-6, i
            for k in range(len(nets)):
                sl = slice(off[k], off[k + 1])
                assert torch.allclose(h[:, sl], hs[k], atol=2e-5), (i, k)
                assert torch.allclose(c[:, sl], cs[k], atol=5e-5), (i, k)


def test_two_members_equal_their_mean_step_after_step() -> None:
    nets = [member(0), member(1)]
    merged = merge(nets)
    assert merged.hidden == 12 and merged.head_w1.shape == (5, 12, 8)
    run(nets, merged)


def test_members_of_other_sizes_and_physics_inputs() -> None:
    nets = [member(3, 5, 3, True), member(4, 7, 2, True), member(5, 4, 4, True)]
    run(nets, merge(nets))


def test_the_mean_is_not_any_member() -> None:
    nets = [member(0), member(1)]
    merged = merge(nets)
    x = features(20, nets[0].inputs.mean.shape[0], 99)
    with torch.no_grad():
        y = merged(x, torch.zeros(20, 12), torch.zeros(20, 12))[0]
        for k, m in enumerate(nets):
            own = m(x, torch.zeros(20, 6), torch.zeros(20, 6))[0]
            assert (y - own).abs().amax() > 1e-2, k


def test_one_member_is_a_copy_bit_for_bit() -> None:
    net = member(7)
    merged = merge([net])
    x = features(30, net.inputs.mean.shape[0], 1)
    h, c = torch.randn(30, 6), torch.randn(30, 6)
    with torch.no_grad():
        a, b = merged(x, h, c), net(x, h, c)
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)


def test_merged_scripts_and_members_stay_unchanged() -> None:
    nets = [member(0), member(1)]
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in nets]
    merged = torch.jit.script(merge(nets))  # the in-process format
    x = features(8, nets[0].inputs.mean.shape[0], 2)
    with torch.no_grad():
        y = merged(x, torch.zeros(8, 12), torch.zeros(8, 12))[0]
    assert y.shape == (8, 5)
    for m, sd in zip(nets, before, strict=True):
        for k, v in m.state_dict().items():
            assert torch.equal(v, sd[k]), k


def test_refusals_name_the_member_and_rule() -> None:
    with pytest.raises(ValueError, match="at least one"):
        merge([])
    with pytest.raises(ValueError, match="member 1 has physics True"):
        merge([member(0), member(1, physics=True)])
    other = FluxLSTMConfig(n_features=7, hidden=6, head_hidden=4).build()
    with pytest.raises(ValueError, match="member 1 has 7 features"):
        merge([member(0), other])
    with pytest.raises(TypeError, match="member 1 is a Linear"):
        merge([member(0), torch.nn.Linear(2, 2)])  # type: ignore[list-item]
