"""Cold starts in the flux LSTM's training (issue 14, item 1: skill from step 0).

The spun-up windows of ``training.flux`` never show the network what a session starts from: the
backends' initial state (``landstep.initial_state``: soil water at 3/4 of capacity, skin and soil
temperatures from latitude alone) with its recurrent state at zero, and the reference model's
transient away from it. Here:

* **fresh windows** — reference trajectories of the training sources *without spin-up*
  (``SourceSpec(spinup_days=0)``), started at ``cold_starts`` dates spread over each record
  (``coldstart.start_days``); every optimiser step runs ``cold_window`` steps from step 0 of
  ``cold_rows`` random rows of them, from the initial state with h = c = 0, closed-loop through
  the constraint layer; their loss (the same as the spun-up windows') is added with weight
  ``cold_weight``; with ``cold_initial_spread`` (water, temperature) those trajectories start
  from soil water and temperatures drawn around the initial state (``start_spread``);
* **zero-state restarts** — at each spun-up window start, a fraction ``reset_fraction`` of the
  rows restarts its recurrent state from zero (a session resumed from a state without this
  emulator's h, c);
* **fine-tuning** — ``init``: a TorchScript flux artifact whose weights and normalisation start
  the training (checked against ``init_sha256``), so a recipe can continue a shipped network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path
from typing import Any

import torch

from emulators.compiled.features import HEIGHT_FEATURES, N_FLUX_FEATURES
from emulators.nets.flux import FluxLSTM, FluxLSTMConfig
from emulators.training.batch import Batch
from emulators.training.coldstart import fresh_specs, record_days, start_days
from emulators.training.data import SourceSpec, simulate
from emulators.training.sources import TRAIN_SOURCES, VALIDATION_SOURCES

Tensor = torch.Tensor
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

#: the cold-start terms every cold-start recipe here trains with: fresh-start windows at full
#: weight and zero-state restarts of a tenth of the spun-up rows
COLD_TERMS: dict[str, Any] = {"cold_weight": 1.0, "reset_fraction": 0.1}

#: the shipped ``flux-lstm-daily`` before cold-start training (2026-11-23)
DAILY_PARENT = "flux_lstm_daily/init/flux_lstm_daily-2026-11-23.ts"
DAILY_PARENT_SHA256 = "f1c35348db5776e4"
#: the cold-start fine-tuning of ``flux-lstm-daily``: ``get("flux-lstm-daily",
#: **DAILY_COLDSTART_OPTIONS)`` (14-day fresh windows). Not shipped: see ``COLDSTART_OPTIONS``.
DAILY_COLDSTART_OPTIONS: dict[str, Any] = {
    "epochs": 6,
    "lr": 1e-3,
    "lr_final": 1e-4,
    **COLD_TERMS,
    "cold_window": 14,
    "init": DAILY_PARENT,
    "init_sha256": DAILY_PARENT_SHA256,
}


#: the shipped ``flux-lstm`` before cold-start training (2026-11-23, spun-up windows only):
#: what :data:`COLDSTART_OPTIONS` fine-tune
PARENT = "flux_lstm/init/flux_lstm-2026-11-23.ts"
PARENT_SHA256 = "ac076d53b94e5f79"


#: the cold-start fine-tuning of ``flux-lstm`` (``flux_cold``): options of ``get("flux-lstm",
#: **COLDSTART_OPTIONS)``, on the first split's weather and network size (pinned: the shipped
#: recipe's are ``training.widened``'s). Not shipped: the candidate it trains is better in the
#: first 48 h of fresh and resumed starts but worse over the continuous Wageningen 1995 record
#: (docs/emulators.md, "Skill from step 0").
COLDSTART_OPTIONS: dict[str, Any] = {
    "train": TRAIN_SOURCES,
    "validation": VALIDATION_SOURCES,
    "options": {},
    "epochs": 8,
    "lr": 1e-3,
    "lr_final": 1e-4,
    **COLD_TERMS,
    "init": PARENT,
    "init_sha256": PARENT_SHA256,
}


def cold_specs(
    sources: tuple[SourceSpec, ...], starts: int, days: int, timestep: int
) -> tuple[SourceSpec, ...]:
    """Fresh-start specs of ``sources``: ``starts`` dates each, ``days`` days recorded."""
    out: list[SourceSpec] = []
    for spec in sources:
        offsets = start_days(record_days(spec, timestep), starts, days)
        out.extend(fresh_specs(spec, offsets, days))
    return tuple(out)


def window_days(config: Any) -> int:
    """Days that a fresh-start window of ``config`` covers (rounded up)."""
    return int(-(-config.cold_window * config.timestep // 86_400))


def cold_batch(config: Any, cache: Path | None, progress: bool) -> Batch | None:
    """The fresh-start batch of a flux training config (None when ``cold_weight`` is 0)."""
    if config.cold_weight <= 0:
        return None
    days = window_days(config)
    specs = cold_specs(config.train, config.cold_starts, days, config.timestep)
    trajs = [simulate(s, config.timestep, progress, cache, config.start_spread) for s in specs]
    return Batch.of(trajs, torch.float32)


def rows(batch: Batch, index: Tensor) -> Batch:
    """The rows ``index`` of ``batch``."""
    return dataclasses.replace(
        batch,
        forcing={k: v[:, index] for k, v in batch.forcing.items()},
        state={k: v[:, index] for k, v in batch.state.items()},
        outputs={k: v[:, index] for k, v in batch.outputs.items()},
        params=batch.params[index],
        tile=batch.tile[index],
        lon=batch.lon[index],
        doy=batch.doy[:, index],
        sod=batch.sod[:, index],
        const={k: v[index] for k, v in batch.const.items()},
        row_source=batch.row_source[index],
        heights=None if batch.heights is None else batch.heights[index],
    )


def init_path(init: str) -> Path:
    """``init`` as a path: absolute, or relative to the package's ``emulators/artifacts``."""
    path = Path(init)
    return path if path.is_absolute() else ARTIFACTS / path


#: the normalisation of ``HEIGHT_FEATURES`` where a network gains them from an init without:
#: centred on the sessions' default heights (ln 10 m, ln 2 m), unit scale (ln 5 apart ~ 1.6)
HEIGHT_NORMALISATION = ((math.log(10.0), math.log(2.0)), (1.0, 1.0))


def load_init(model: torch.nn.Module, init: str, sha256: str) -> None:
    """Load the weights and normalisation of the TorchScript file ``init`` into ``model``; its
    SHA-256 must start with ``sha256`` (when given). A ``model`` that takes the measurement
    heights (``HEIGHT_FEATURES``) from an ``init`` that does not gets them with zero input
    weights (and :data:`HEIGHT_NORMALISATION`): it starts as the init, at every height."""
    state = dict(_pinned(init, sha256, "init").state_dict())
    extra = len(HEIGHT_FEATURES)
    width = int(state["inputs.mean"].shape[0])
    if isinstance(model, FluxLSTM) and int(model.inputs.mean.shape[0]) == width + extra:
        if width != N_FLUX_FEATURES or model.physics:
            raise ValueError(f"init: cannot add the height features to {init} ({width} inputs)")
        mean, std = HEIGHT_NORMALISATION
        for key, values in (("inputs.mean", mean), ("inputs.std", std)):
            old = state[key]
            state[key] = torch.cat([old, torch.tensor(values, dtype=old.dtype)])
        weight = state["wx.weight"]
        state["wx.weight"] = torch.cat([weight, weight.new_zeros(weight.shape[0], extra)], 1)
    model.load_state_dict(state)


def _pinned(init: str, sha256: str, field: str) -> torch.jit.ScriptModule:
    """The TorchScript file ``init`` (``init_path``), its SHA-256 starting with ``sha256``."""
    path = init_path(init)
    if not path.exists():
        raise FileNotFoundError(f"{field}: {path} does not exist")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha256 and not digest.startswith(sha256):
        raise ValueError(f"{field}: {path} has SHA-256 {digest[:16]}, the config wants {sha256}")
    return torch.jit.load(str(path), map_location="cpu")


def load_member(init: str, sha256: str) -> FluxLSTM:
    """A trained ``flux_lstm`` network from the TorchScript file ``init`` (``init_path``; its
    SHA-256 must start with ``sha256``), at the widths it was trained with: a pinned member of
    an ensemble (``FluxTrainConfig.members``)."""
    ts = _pinned(init, sha256, "members")
    features = int(ts.inputs.mean.shape[0])
    cfg = FluxLSTMConfig(
        n_features=features,
        n_outputs=int(ts.tasks),
        hidden=int(ts.hidden),
        head_hidden=int(ts.head_w1.shape[2]),
        physics=int(ts.wx.weight.shape[1]) > features,  # the derived inputs' columns
    )
    net = cfg.build()
    net.load_state_dict(ts.state_dict())
    return net.eval()
