"""Recipe of the LAI emulators: ``lai`` (daily aggregates of hourly land steps) and ``lai-daily``
(of 86 400 s land steps) — one recipe at two timesteps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulators.constants import SECONDS_PER_DAY as DAY
from emulators.recipes.base import Recipe, training_record
from emulators.recipes.flux import matching
from emulators.recipes.registry import register

if TYPE_CHECKING:
    from torch import nn

    from emulators.export import ExportSpec
    from emulators.manifest import Manifest
    from emulators.training.trainer import TrainResult


@register("lai")
@register("lai-daily", timestep=DAY)
@dataclass(frozen=True)
class LAIRecipe(Recipe):
    """Daily MLP, free-running over the year on its own LAI, trained on daily aggregates of
    reference trajectories at ``timestep`` land steps (the step of the sessions it serves)."""

    architecture = "lai"
    description = "daily LAI emulator (MLP on daily aggregates of land steps, free-running)"
    loss = "MSE of 60-day free-running LAI rollouts + one-day teacher-forced MSE"
    timesteps = (3600, DAY)

    def config(self) -> Any:
        from emulators.training import lai

        base = lai.daily_config() if self.timestep == DAY else lai.LAITrainConfig()
        return matching(self, self.configured(base))

    def fit(self, config: Any, work: Path, progress: bool) -> TrainResult:
        from emulators.training import lai
        from emulators.training.trainer import save_best

        result = lai.train(config, cache=work / "data", progress=progress)
        save_best(work / f"{self.name}-best.pt", result.model, config)
        return result

    def network(self, config: Mapping[str, Any]) -> nn.Module:
        import emulators.nets.lai  # noqa: F401  (registers "lai")
        from emulators.nets import registry

        return registry.build(self.architecture, config)

    def architecture_config(self, config: Any, model: nn.Module) -> dict[str, Any]:
        import torch

        from emulators.compiled.lai_step import LAI_FEATURES

        members: Any = getattr(model, "members", None)
        mlp: Any = model.mlp if members is None else members[0]
        return {
            "n_features": len(LAI_FEATURES),
            "hidden": int(mlp[0].out_features),
            "layers": sum(isinstance(m, torch.nn.Linear) for m in mlp) - 1,
        } | ({} if members is None else {"members": len(members)})

    def export_spec(self, model: nn.Module, config: dict[str, Any]) -> ExportSpec:
        from emulators.training import specs

        return specs.lai(model, config, self.timestep)

    def training_record(self, config: Any, result: TrainResult, seconds: float) -> dict[str, Any]:
        from emulators.training import evaluate as ev

        held_out = ev.lai_held_out(config.timestep)
        ensemble = "members" in result.extra  # one best epoch per member, in "members"
        record = training_record(
            self.name, config, result, held_out, seconds, best_epoch=not ensemble
        )
        return record | result.extra

    def evaluate_at(
        self, directory: Path, out_dir: Path, cache: Path | None, progress: bool
    ) -> Manifest:
        from emulators.training.evaluate import evaluate_lai

        return evaluate_lai(directory, out_dir, cache, progress)

    def compare(self, artifacts: Path, out_dir: Path, cache: Path | None, progress: bool) -> None:
        """At a timestep other than the hourly ``lai``'s: the hourly-trained ``lai`` on the same
        held-out data (``out_dir/lai-at-TIMESTEP/``; its manifest is not changed)."""
        from emulators.recipes.registry import get
        from emulators.training.evaluate import evaluate_lai

        hourly = artifacts / get("lai").artifact
        if self.timestep != 3600 and (hourly / "manifest.json").exists():
            out = out_dir / f"lai-at-{self.timestep}"
            evaluate_lai(hourly, out, cache, progress, timestep=self.timestep)
