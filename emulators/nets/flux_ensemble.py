"""An ensemble of ``flux_lstm`` networks as one wider ``flux_lstm``, exactly.

M members trained alone (e.g. from different seeds) average their five outputs. Because each
member's LSTM cell and heads act on their own hidden units, the ensemble *is* a ``flux_lstm``
whose hidden units are the members' side by side (H = Σ H_m, K = Σ K_m):

* the input projection ``wx`` stacks the members' rows gate by gate (i, f, u, o, then the task
  gates), each member's block at its own offset;
* the recurrent matrix ``wh`` is block-diagonal, so no member sees another's state;
* the heads' first layer is block-diagonal per task; the second carries each member's weights
  divided by M, its bias the members' mean.

The members' normalisations may differ (each training run samples its own statistics): the merged
network keeps member 0's and folds the others' affine maps into their weights — for the inputs
z_m = (s/s_m) z + (μ − μ_m)/s_m, for the outputs y = Σ_m (y_m σ_m + ν_m − ν)/(M σ) — so the
result equals the mean of the members' physical outputs up to float32 rounding, and a backend
loads it as one network of width H (measured with TorchScript and the fused operator,
docs/emulators.md "Other seeds and an ensemble of seeds"). The price is the zero blocks: with
equal members the recurrent product costs (F + H)/(F + H_m) times what the M members would
cost alone, the heads M times. Member m's recurrent state is ``h[:, off_m : off_m + H_m]``
(:func:`offsets`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from emulators.nets.flux import FluxLSTM, FluxLSTMConfig

Tensor = torch.Tensor


def offsets(members: Sequence[FluxLSTM]) -> list[int]:
    """Where each member's hidden units start in the merged network's state (and the total)."""
    out = [0]
    for m in members:
        out.append(out[-1] + m.hidden)
    return out


def _head_width(net: FluxLSTM) -> int:
    return int(net.head_w1.shape[2])


def _check(members: Sequence[FluxLSTM]) -> None:
    if not members:
        raise ValueError("flux ensemble: members: need at least one network")
    first = members[0]
    for k, m in enumerate(members):
        if not isinstance(m, FluxLSTM):
            raise TypeError(f"flux ensemble: member {k} is a {type(m).__name__}, not a FluxLSTM")
        for name in ("tasks", "physics"):
            if getattr(m, name) != getattr(first, name):
                raise ValueError(
                    f"flux ensemble: member {k} has {name} {getattr(m, name)!r}, member 0 "
                    f"{getattr(first, name)!r}"
                )
        if m.inputs.mean.shape != first.inputs.mean.shape:
            raise ValueError(
                f"flux ensemble: member {k} has {m.inputs.mean.shape[0]} features, member 0 "
                f"{first.inputs.mean.shape[0]}"
            )
        if m.physics and list(m.derived_from) != list(first.derived_from):
            raise ValueError(f"flux ensemble: member {k} derives its physics inputs from others")


@torch.no_grad()
def merge(members: Sequence[FluxLSTM]) -> FluxLSTM:
    """The mean of ``members``' outputs as one :class:`FluxLSTM` (module docstring); the members
    are left unchanged. One member gives a copy of itself, bit for bit."""
    _check(members)
    first, n = members[0], len(members)
    hos = offsets(members)
    ks = [_head_width(m) for m in members]
    h_all, k_all, t = hos[-1], sum(ks), first.tasks
    f = first.inputs.mean.shape[0]
    cfg = FluxLSTMConfig(
        n_features=f, n_outputs=t, hidden=h_all, head_hidden=k_all, physics=first.physics
    )
    net = cfg.build()
    for p in net.parameters():
        p.zero_()
    net.inputs.load_state_dict(first.inputs.state_dict())
    net.outputs.load_state_dict(first.outputs.state_dict())
    mu, s = first.inputs.mean.double(), first.inputs.std.double()
    nu, sigma = first.outputs.mean.double(), first.outputs.std.double()
    b2 = torch.zeros(t, dtype=torch.float64)
    ko = 0
    for m, ho, k in zip(members, hos, ks, strict=False):  # hos has one entry more: the total
        h = m.hidden
        # the member's input layer on member 0's normalisation (module docstring)
        w = m.wx.weight.double().clone()
        b = m.wx.bias.double().clone()
        mu_m, s_m = m.inputs.mean.double(), m.inputs.std.double()
        b += w[:, :f] @ ((mu - mu_m) / s_m)
        w[:, :f] *= s / s_m
        blocks = [(g * h, g * h_all) for g in range(4)] + [
            (4 * h + j * h, 4 * h_all + j * h_all) for j in range(t)
        ]
        for src, dst in blocks:
            rows = slice(dst + ho, dst + ho + h)
            net.wx.weight[rows] = w[src : src + h].float()
            net.wx.bias[rows] = b[src : src + h].float()
        for g in range(4):
            net.wh.weight[g * h_all + ho : g * h_all + ho + h, ho : ho + h] = m.wh.weight[
                g * h : (g + 1) * h
            ]
        net.head_w1[:, ho : ho + h, ko : ko + k] = m.head_w1
        net.head_b1[:, :, ko : ko + k] = m.head_b1
        scale = m.outputs.std.double() / (n * sigma)
        net.head_w2[:, ko : ko + k] = (m.head_w2.double() * scale.unsqueeze(1)).float()
        b2 += (m.head_b2.double() * m.outputs.std.double() + m.outputs.mean.double() - nu) / (
            n * sigma
        )
        ko += k
    net.head_b2.copy_(b2.float())
    if first.physics:
        net.derived_from = list(first.derived_from)
    return net.eval()
