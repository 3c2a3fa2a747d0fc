"""Flux emulators: a multi-task LSTM stepped one timestep at a time (MdPL) and a windowed
Transformer encoder (Trans-LAI), both predicting the five ``FLUX_OUTPUTS`` per tile row.

Both take physical features (``emulators.compiled.features.FLUX_FEATURES``) and return physical
outputs: the per-feature/per-output normalisation lives in the module as buffers (filled from the
training data and recorded in the manifest), so an exported artifact is self-contained.

``flux_lstm`` (MdPL's multi-task surrogate, Xie, Li & Yoshimura; SCIENCE.md §2), with the
recurrent state explicit — ``forward(x, h, c) -> (y, h, c)``:
- one shared LSTM cell (hidden H) over the normalised features (forcing, DOY and hour encodings,
  the 12 parameters normalised to their ranges, land-state inputs, class one-hot);
- per task i a sigmoid gate g_i = σ(W_i x + b_i) on the shared features (MdPL's gate on the
  combined input), then a task-specific head (H → K → 1, SiLU). MdPL uses 4×128 shared layers and
  2-layer LSTM heads (≈1.1 M parameters); here H = 32, K = 16 (≈ 10 k parameters): the reference
  step is Markov in its state, which the emulator receives explicitly, so a small recurrent memory
  suffices, and the budget is ≥ 20× the reference model's speed on 2 CPU cores
  (docs/emulators.md). With ``physics=True`` the LSTM also reads five Penman–Monteith terms it
  derives from the raw features (``features.derived_flux_features``; a measured candidate, not
  shipped: docs/emulators.md).

``flux_transformer`` (Trans-LAI; SCIENCE.md §1): linear embedding of each of the last W steps'
features plus a learned position embedding, a stack of pre-norm Transformer encoder layers
(multi-head self-attention + 2-layer GELU FFN, residual + layer norm), the last step's token → the
five outputs. The paper uses 6 layers; we default to 2 at d = 32 for a CPU budget (documented).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from emulators.compiled.closure import N_FLUX_OUTPUTS
from emulators.compiled.features import (
    DERIVED_FROM,
    N_DERIVED_FLUX_FEATURES,
    N_FLUX_FEATURES,
    derived_flux_features,
)
from emulators.nets.registry import register

Tensor = torch.Tensor


class Normaliser(nn.Module):
    """Affine normalisation with stored statistics: ``forward(x) = (x − mean)/std`` and
    ``inverse(z) = z·std + mean`` over the last axis."""

    if TYPE_CHECKING:  # buffers, for mypy only (TorchScript must not see the annotations)
        mean: Tensor
        std: Tensor

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))

    def set(self, mean: Tensor, std: Tensor) -> None:
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ValueError(
                f"normalisation: expected shapes {tuple(self.mean.shape)}, got "
                f"{tuple(mean.shape)} and {tuple(std.shape)}"
            )
        if not bool((std > 0).all()) or not bool(torch.isfinite(mean).all()):
            raise ValueError("normalisation: std must be > 0 and mean finite")
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(std.to(self.std.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def inverse(self, z: Tensor) -> Tensor:
        return z * self.std + self.mean


# ---- flux_lstm --------------------------------------------------------------------------------
@register("flux_lstm")
@dataclass(frozen=True)
class FluxLSTMConfig:
    n_features: int = N_FLUX_FEATURES
    n_outputs: int = N_FLUX_OUTPUTS
    hidden: int = 32
    head_hidden: int = 16
    #: append ``DERIVED_FLUX_FEATURES`` (Penman–Monteith terms computed from the raw features)
    #: to the normalised inputs; needs the ``FLUX_FEATURES`` layout
    physics: bool = False

    def __post_init__(self) -> None:
        for name in ("n_features", "n_outputs", "hidden", "head_hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"flux_lstm: {name} must be a positive integer, got {value!r}")
        if not isinstance(self.physics, bool):
            raise ValueError(f"flux_lstm: physics must be true or false, got {self.physics!r}")
        if self.physics and self.n_features != N_FLUX_FEATURES:
            raise ValueError(
                f"flux_lstm: physics needs the {N_FLUX_FEATURES} FLUX_FEATURES, got "
                f"n_features={self.n_features}"
            )

    def build(self) -> FluxLSTM:
        return FluxLSTM(self)


class FluxLSTM(nn.Module):
    """Multi-task gated LSTM, one step: ``forward(x (N, F), h (N, H), c (N, H)) ->
    (y (N, T) physical outputs, h, c)``."""

    # a constant to TorchScript, so a network without the derived features scripts without them
    __constants__ = ("physics",)

    def __init__(self, cfg: FluxLSTMConfig) -> None:
        super().__init__()
        f, h, t, k = cfg.n_features, cfg.hidden, cfg.n_outputs, cfg.head_hidden
        self.hidden = h
        self.tasks = t
        self.physics = cfg.physics
        self.derived_from = list(DERIVED_FROM)
        self.inputs = Normaliser(f)
        self.outputs = Normaliser(t)
        # one matmul for the LSTM's input projection and the task gates
        self.wx = nn.Linear(f + N_DERIVED_FLUX_FEATURES * cfg.physics, 4 * h + t * h)
        self.wh = nn.Linear(h, 4 * h, bias=False)
        self.head_w1 = nn.Parameter(torch.randn(t, h, k) / h**0.5)
        self.head_b1 = nn.Parameter(torch.zeros(t, 1, k))
        self.head_w2 = nn.Parameter(torch.randn(t, k) / k**0.5)
        self.head_b2 = nn.Parameter(torch.zeros(t))
        with torch.no_grad():  # forget-gate bias 1 (Jozefowicz et al. 2015)
            self.wx.bias[h : 2 * h].fill_(1.0)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n = self.hidden
        z = self.inputs(x)
        if self.physics:
            z = torch.cat([z, derived_flux_features(x, self.derived_from)], dim=-1)
        a = self.wx(z)
        g = a[:, : 4 * n] + self.wh(h)
        i = torch.sigmoid(g[:, :n])
        f = torch.sigmoid(g[:, n : 2 * n])
        u = torch.tanh(g[:, 2 * n : 3 * n])
        o = torch.sigmoid(g[:, 3 * n :])
        c = f * c + i * u
        h = o * torch.tanh(c)
        gates = torch.sigmoid(a[:, 4 * n :]).reshape(-1, self.tasks, n)
        shared = (gates * h.unsqueeze(1)).transpose(0, 1)  # (T, N, H)
        z = nn.functional.silu(torch.bmm(shared, self.head_w1) + self.head_b1)  # (T, N, K)
        y = (z * self.head_w2.unsqueeze(1)).sum(-1).transpose(0, 1) + self.head_b2  # (N, T)
        return self.outputs.inverse(y), h, c


# ---- flux_transformer -------------------------------------------------------------------------
#: the transformer's extra raw outputs, penalised for energy/water consistency (Trans-LAI)
PENALTY_OUTPUTS: tuple[tuple[str, str, str], ...] = (
    ("hfdsl_raw", "W m-2", "ground heat flux predicted directly (not served)"),
    ("dmrso_raw", "kg m-2", "soil water change over the step predicted directly (not served)"),
)


@register("flux_transformer")
@dataclass(frozen=True)
class FluxTransformerConfig:
    n_features: int = N_FLUX_FEATURES
    n_outputs: int = N_FLUX_OUTPUTS + len(PENALTY_OUTPUTS)
    window: int = 24
    d_model: int = 32
    heads: int = 4
    layers: int = 2
    ffn: int = 64

    def __post_init__(self) -> None:
        for name in ("n_features", "n_outputs", "window", "d_model", "heads", "layers", "ffn"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"flux_transformer: {name} must be a positive integer, got {value!r}"
                )
        if self.d_model % self.heads:
            raise ValueError(
                f"flux_transformer: d_model {self.d_model} must be divisible by heads {self.heads}"
            )

    def build(self) -> FluxTransformer:
        return FluxTransformer(self)


class _EncoderLayer(nn.Module):
    """Pre-norm encoder layer: x + MHSA(LN(x)); x + FFN(LN(x)) with a GELU FFN."""

    def __init__(self, d: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, ffn)
        self.ff2 = nn.Linear(ffn, d)

    def forward(self, x: Tensor) -> Tensor:
        n, w, d = x.shape
        hd = d // self.heads
        qkv = self.qkv(self.norm1(x)).reshape(n, w, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (TorchScript cannot unpack a tensor)
        att = torch.softmax(q @ k.transpose(-1, -2) / hd**0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(n, w, d))
        return x + self.ff2(nn.functional.gelu(self.ff1(self.norm2(x))))


class FluxTransformer(nn.Module):
    """``forward(window (N, W, F)) -> y (N, T)``: outputs for the window's last step."""

    def __init__(self, cfg: FluxTransformerConfig) -> None:
        super().__init__()
        self.window = cfg.window
        self.inputs = Normaliser(cfg.n_features)
        self.outputs = Normaliser(cfg.n_outputs)
        self.embed = nn.Linear(cfg.n_features, cfg.d_model)
        self.position = nn.Parameter(torch.zeros(cfg.window, cfg.d_model))
        self.layers = nn.ModuleList(
            [_EncoderLayer(cfg.d_model, cfg.heads, cfg.ffn) for _ in range(cfg.layers)]
        )
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.n_outputs)

    def forward(self, window: Tensor) -> Tensor:
        return self.encode(self.inputs(window))

    def encode(self, z: Tensor) -> Tensor:
        """Outputs (physical) from an already normalised window (N, W, F)."""
        x = self.embed(z) + self.position
        for layer in self.layers:
            x = layer(x)
        return self.outputs.inverse(self.head(self.norm(x[:, -1])))


class FluxTransformerStep(nn.Module):
    """The transformer behind the recurrent calling convention ``forward(x, h, c) -> (y, h, c)``:
    ``h`` (N, (W − 1)·F) holds the *normalised* features of the previous W − 1 steps (zeros, i.e.
    the training mean, at start), ``c`` (N, 1) is unused; ``y`` are the five served outputs. The
    same backend, exports and state handling then serve both flux emulators."""

    def __init__(self, net: FluxTransformer) -> None:
        super().__init__()
        self.net = net
        self.window = net.window
        self.features = int(net.inputs.mean.shape[0])
        self.hidden = (net.window - 1) * self.features
        self.served = N_FLUX_OUTPUTS

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z = self.net.inputs(x).unsqueeze(1)
        past = h.reshape(x.shape[0], self.window - 1, self.features)
        window = torch.cat([past, z], dim=1)
        y = self.net.encode(window)
        return y[:, : self.served], window[:, 1:].reshape(x.shape[0], self.hidden), c
