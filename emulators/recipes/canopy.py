"""Recipe of ``canopy-mlp``: the network in the canopy phase of the ``hybrid`` backend
(``emulators.compiled.hybrid``), trained on the reference's canopy photosynthesis along the
hourly flux emulator's training weather, evaluated as the hybrid backend against the reference
on the flux emulators' held-out sources and starts (``training.evaluate_hybrid``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulators.recipes.base import Recipe, training_record
from emulators.recipes.flux import FLUX_DRIFT, matching
from emulators.recipes.registry import register

if TYPE_CHECKING:
    from torch import nn

    from emulators.export import ExportSpec
    from emulators.manifest import Manifest
    from emulators.training.trainer import TrainResult

#: the ranges the export's example inputs are drawn from (the reference's valid inputs)
EXAMPLE_RANGES: tuple[tuple[float, float], ...] = (
    (0.0, 1000.0),  # rsds
    (260.0, 315.0),  # t_leaf
    (7.0e4, 1.03e5),  # ps
    (0.1, 1.0),  # rh
    (390.0, 390.0),  # co2_ppm
    (0.0, 6.0),  # lai
    (1e-6, 1e-4),  # vmax0
    (0.01, 0.2),  # effcon
    (1.0, 20.0),  # gradm
    (1e-3, 0.1),  # binter
    (0.05, 0.3),  # rlfv
    (0.0, 1.0),  # f_w
)


@register("canopy-mlp")
@dataclass(frozen=True)
class CanopyRecipe(Recipe):
    """Physics-constrained MLP of canopy photosynthesis for the ``hybrid`` backend."""

    architecture = "canopy_mlp"
    description = "canopy photosynthesis and stomatal conductance MLP of the hybrid backend"
    loss = "MSE of the gross assimilation as a fraction of its physical ceiling (daylit leaves)"
    drift = FLUX_DRIFT

    def config(self) -> Any:
        from emulators.training import canopy

        return matching(self, self.configured(canopy.CanopyTrainConfig()))

    def fit(self, config: Any, work: Path, progress: bool) -> TrainResult:
        from emulators.training import canopy
        from emulators.training.trainer import save_best

        result = canopy.train(config, cache=work / "data", progress=progress)
        save_best(work / f"{self.name}-best.pt", result.model, config)
        return result

    def network(self, config: Mapping[str, Any]) -> nn.Module:
        import emulators.nets.canopy  # noqa: F401  (registers "canopy_mlp")
        from emulators.nets import registry

        return registry.build(self.architecture, config)

    def architecture_config(self, config: Any, model: nn.Module) -> dict[str, Any]:
        import emulators.nets.canopy  # noqa: F401  (registers "canopy_mlp")
        from emulators.nets import registry

        return dataclasses.asdict(registry.config(config.architecture, config.options))  # type: ignore[call-overload]

    def export_spec(self, model: nn.Module, config: dict[str, Any]) -> ExportSpec:
        import torch

        from emulators.export import ExportSpec
        from emulators.manifest import Channel, TensorSpec
        from emulators.nets.canopy import CANOPY_INPUTS, CANOPY_OUTPUTS

        g = torch.Generator().manual_seed(0)
        low = torch.tensor([lo for lo, _ in EXAMPLE_RANGES])
        high = torch.tensor([hi for _, hi in EXAMPLE_RANGES])
        x = low + (high - low) * torch.rand(64, len(EXAMPLE_RANGES), generator=g)
        edges = x.clone()  # rows every format must get right: night, no leaves, no water
        edges[:16, 0], edges[16:32, 5], edges[32:48, 11] = 0.0, 0.0, 0.0
        mid = (low + high) / 2
        return ExportSpec(
            architecture=self.architecture,
            config=config,
            timestep_seconds=float(self.timestep),
            inputs=[
                TensorSpec(
                    "x",
                    ["rows", len(CANOPY_INPUTS)],
                    "float32",
                    "canopy inputs per (member, cell, tile) row in physical units "
                    "(the arguments of reference.photosynthesis.canopy_photosynthesis)",
                    [
                        Channel(n, u, ln, float(m), float(h - lo))
                        for (n, u, ln), m, lo, h in zip(
                            CANOPY_INPUTS, mid.tolist(), low.tolist(), high.tolist(), strict=True
                        )
                    ],
                )
            ],
            outputs=[
                TensorSpec(
                    "y",
                    ["rows", len(CANOPY_OUTPUTS)],
                    "float32",
                    "canopy GPP and stomatal conductance (per vegetated area)",
                    [Channel(n, u, ln, 0.0, 1.0) for n, u, ln in CANOPY_OUTPUTS],
                )
            ],
            example=(x.float(),),
            checks=((x.float(),), (edges.float(),)),
            recurrent_state={"hidden": 0, "tensors": [], "carried": "none: a stateless phase"},
            notes="The canopy phase of the hybrid backend (emulators.compiled.hybrid): the "
            "reference land model with this network in place of its photosynthesis solve. "
            "Input channels' mean/std describe the example ranges (mid-point, width); the "
            "network's own scaling is physical (emulators.nets.canopy.features). Trained on "
            "hourly states; the canopy does not depend on the step length.",
        )

    def training_record(self, config: Any, result: TrainResult, seconds: float) -> dict[str, Any]:
        from emulators.training import evaluate as ev

        record = training_record(self.name, config, result, ev.FLUX_HELD_OUT, seconds, self.loss)
        return record | result.extra

    def evaluate_at(
        self, directory: Path, out_dir: Path, cache: Path | None, progress: bool
    ) -> Manifest:
        from emulators.training.evaluate_hybrid import evaluate_hybrid

        return evaluate_hybrid(directory, out_dir, cache, progress)

    def evaluate_at_step(
        self, directory: Path, out_dir: Path, cache: Path | None, progress: bool, timestep: int
    ) -> Manifest:
        """The hybrid backend's held-out skill at land steps of ``timestep`` seconds (e.g.
        86 400: the daily flux emulator's held-out sources and starts), as a report only."""
        from emulators.training.evaluate_hybrid import evaluate_hybrid

        return evaluate_hybrid(directory, out_dir, cache, progress, save=False, timestep=timestep)
