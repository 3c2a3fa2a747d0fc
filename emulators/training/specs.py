"""Export specs of the flux and LAI emulators (``emulators.export.ExportSpec``): the example inputs
the graphs are exported with, the dynamic ``rows`` dimension, and the manifest's description of
inputs and outputs (names, units, normalisation) and of the recurrent state."""

from __future__ import annotations

from typing import Any

import torch

from emulators.compiled.closure import FLUX_OUTPUTS
from emulators.compiled.features import FLUX_FEATURES, flux_input_features
from emulators.compiled.lai_step import LAI_FEATURES, LAI_OUTPUTS
from emulators.export import ExportSpec
from emulators.manifest import Channel, TensorSpec
from emulators.nets import flux as flux_nets

EXAMPLE_ROWS = 64


def channels(features: Any, mean: torch.Tensor, std: torch.Tensor) -> list[Channel]:
    return [
        Channel(f.name, f.units, f.long_name, float(m), float(s))
        for f, m, s in zip(features, mean.tolist(), std.tolist(), strict=True)
    ]


def flux(
    *,
    architecture: str,
    config: dict[str, Any],
    inputs: flux_nets.Normaliser,
    outputs: flux_nets.Normaliser,
    state: dict[str, Any],
    timestep: float,
) -> ExportSpec:
    """A flux emulator with the recurrent convention ``forward(x, h, c) -> (y, h, c)``, trained
    for steps of ``timestep`` seconds; ``state``: the widths (``hidden``, ``c_width``) and
    descriptions (``h``, ``c``) of its recurrent state."""
    hidden, c_width = int(state["hidden"]), int(state["c_width"])
    g = torch.Generator().manual_seed(0)
    x = inputs.mean + inputs.std * torch.randn(EXAMPLE_ROWS, inputs.mean.shape[0], generator=g)
    example = (
        x.float(),
        torch.rand(EXAMPLE_ROWS, hidden, generator=g) - 0.5,
        2 * torch.rand(EXAMPLE_ROWS, c_width, generator=g) - 1.0,
    )
    n_out = len(FLUX_OUTPUTS)
    features = flux_input_features(int(inputs.mean.shape[0]))
    served = [
        Channel(n, u, ln, float(m), float(sd))
        for (n, u, ln), m, sd in zip(
            FLUX_OUTPUTS, outputs.mean.tolist()[:n_out], outputs.std.tolist()[:n_out], strict=True
        )
    ]
    return ExportSpec(
        architecture=architecture,
        config=config,
        timestep_seconds=float(timestep),
        inputs=[
            TensorSpec(
                "x",
                ["rows", len(features)],
                "float32",
                "per-tile-row features in physical units (normalised inside)",
                channels(features, inputs.mean, inputs.std),
            ),
            TensorSpec("h", ["rows", hidden], "float32", f"{state['h']} (zeros at start)"),
            TensorSpec("c", ["rows", c_width], "float32", f"{state['c']} (zeros at start)"),
        ],
        outputs=[
            TensorSpec(
                "y",
                ["rows", n_out],
                "float32",
                "predictions in physical units, closed by emulators.compiled.closure",
                served,
            ),
            TensorSpec("h_out", ["rows", hidden], "float32", f"{state['h']} after the step"),
            TensorSpec("c_out", ["rows", c_width], "float32", f"{state['c']} after the step"),
        ],
        example=example,
        recurrent_state={
            "hidden": hidden,
            "c_width": c_width,
            "tensors": ["h", "c"],
            "returned_as": ["h_out", "c_out"],
            "dtype": "float32",
            "initial": "zeros",
            "row": "one (member, cell, tile) entry; LandState keys lstm_h (member, cell, tile, "
            "hidden) and lstm_c (member, cell, tile, c_width)",
        },
        notes="Inputs: emulators.compiled.features.FLUX_FEATURES"
        + (" and HEIGHT_FEATURES" if len(features) > len(FLUX_FEATURES) else "")
        + "; outputs: "
        "emulators.compiled.closure.FLUX_OUTPUTS. One call advances one timestep of "
        "timestep_seconds; fluxes are closed by the shared constraint layer."
        + (
            " At steps of a day or longer the local-solar-hour features (hour_sin, hour_cos) "
            "are constant zeros (a daily step covers every hour)."
            if timestep >= 86_400
            else ""
        ),
    )


def lai(model: torch.nn.Module, config: dict[str, Any], timestep: float) -> ExportSpec:
    """An LAI emulator (``forward(x) -> dlai``, called once a day); ``timestep``: the land step
    [s] of its training trajectories (in the notes)."""
    from emulators.nets.lai import LAIEmulator, LAIEnsemble

    if not isinstance(model, LAIEmulator | LAIEnsemble):
        raise TypeError("an LAI export needs an LAIEmulator or LAIEnsemble")
    g = torch.Generator().manual_seed(0)
    x = model.inputs.mean + model.inputs.std * torch.randn(
        EXAMPLE_ROWS, len(LAI_FEATURES), generator=g
    )
    return ExportSpec(
        architecture="lai",
        config=config,
        timestep_seconds=86_400.0,
        inputs=[
            TensorSpec(
                "x",
                ["rows", len(LAI_FEATURES)],
                "float32",
                "per-tile-row daily aggregates in physical units (normalised inside)",
                channels(LAI_FEATURES, model.inputs.mean, model.inputs.std),
            )
        ],
        outputs=[
            TensorSpec(
                "dlai",
                ["rows", 1],
                "float32",
                "LAI change over the day; LAI' = clip(LAI + dlai, 0, LAI_max)",
                [
                    Channel(n, u, ln, float(model.outputs.mean[0]), float(model.outputs.std[0]))
                    for n, u, ln in LAI_OUTPUTS
                ],
            )
        ],
        example=(x.float(),),
        recurrent_state={
            "hidden": 0,
            "tensors": [],
            "carried": "LAI as leaf carbon (cleaf = "
            "LAI/SLA) in LandState; the network itself is stateless",
        },
        notes="Called once per day per tile with the day's aggregates "
        "(emulators.compiled.lai_step)."
        + (
            f" Trained on reference trajectories at {timestep:g} s land steps "
            "(training.config.timestep); the emulator backend serves it to sessions with that dt."
            if timestep != 3600
            else ""
        ),
    )
