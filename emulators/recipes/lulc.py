"""Recipe of the land-use / land-cover downscaler ``lulc-unet`` (AI4Land; docs/lulc.md): data from
the real masks and the seeded generator over the whole domain, cross-entropy on the conserved
output, scored against the baselines on the held-out test regions during training (the skill and
acceptance go into the manifest), exported with the conservation layer inside every graph."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulators.constants import SECONDS_PER_YEAR
from emulators.recipes.base import Drift, Recipe
from emulators.recipes.registry import register

if TYPE_CHECKING:
    from torch import nn

    from emulators.export import ExportSpec
    from emulators.manifest import Manifest
    from emulators.training.trainer import TrainResult

YEAR = int(SECONDS_PER_YEAR)  # s: called once per model (or scenario) year


@register("lulc-unet", timestep=YEAR)
@dataclass(frozen=True)
class LulcUNetRecipe(Recipe):
    """U-Net + prior + conservation layer: coarse class fractions + fine static features → fine
    fractions that conserve the coarse ones exactly."""

    architecture = "lulc_unet"
    description = (
        "LULC downscaling U-Net (AI4Land): coarse class fractions + fine static features -> "
        "fine fractions conserving the coarse ones exactly"
    )
    loss = "cross-entropy on the conserved output"
    timesteps = (YEAR,)
    drift = Drift(
        ("method",),
        {"method": ("lulc_unet",)},
        ("accuracy", "accuracy_mixed", "mae", "mae_mixed", "mean_iou", "mean_iou_mixed"),
        labelled=False,
    )
    scores_while_training = True

    def config(self) -> Any:
        from emulators.lulc.train import TrainConfig

        return self.configured(TrainConfig())

    def fit(self, config: Any, work: Path, progress: bool) -> TrainResult:
        from emulators.lulc import data as lulc_data
        from emulators.lulc import report
        from emulators.lulc.train import tile_batches, train
        from emulators.lulc.unet import LulcUNetConfig

        t0 = time.perf_counter()
        data = lulc_data.build()
        digest = lulc_data.data_hash(data)
        built = time.perf_counter() - t0
        model_config = LulcUNetConfig(factor=data.config.factor)
        result = train(data, model_config, config, work / "lulc-unet-checkpoints", progress)
        test = tile_batches(data, data.tiles("test"), data.config.test_seed)
        table = report.score(result.model, test, model_config.factor)
        result.data_hash = digest
        result.extra = {
            "data": data,
            "data_seconds": built,
            "test": test,
            "table": table,
            "acceptance": report.acceptance(table),
        }
        return result

    def training_record(self, config: Any, result: TrainResult, seconds: float) -> dict[str, Any]:
        import torch

        from emulators.lulc.generator import GeneratorConfig

        data = result.extra["data"]
        return {
            "command": f"landcoupler emulators train {self.name}"
            + (f" --seed {config.seed}" if config.seed else "")
            + (f" --epochs {config.epochs}" if "epochs" in self.options else ""),
            "data_hash": result.data_hash,
            "data": dataclasses.asdict(data.config),
            "generator": dataclasses.asdict(GeneratorConfig())
            | {"seed": "train_seeds / val_seed / test_seed"},
            "domain": "76N-56S, all longitudes; 5' fine grid, 40' coarse cells",
            "regions": {
                k: [dataclasses.asdict(r) | {"label": r.label()} for r in v]
                for k, v in data.regions.items()
            },
            "config": dataclasses.asdict(config),
            "history": result.history,
            "best_epoch": result.best_epoch,
            "stopped": result.stopped,
            "data_seconds": round(result.extra["data_seconds"], 1),
            "seconds": round(result.seconds, 1),
            "threads": config.threads,
            "torch": torch.__version__,
            "test_tiles": len(data.tiles("test")),
            "acceptance": result.extra["acceptance"],
        }

    def trained_skill(self, result: TrainResult) -> list[dict[str, Any]]:
        from emulators.lulc import report

        return report.skill_rows(result.extra["table"], "test")

    def after_export(self, result: TrainResult, work: Path) -> None:
        from emulators.lulc import report

        extra = result.extra
        report.write(
            work / f"report-{self.name}",
            extra["table"],
            extra["acceptance"],
            result.model,
            extra["test"],
            result.model.factor,
        )

    def network(self, config: Mapping[str, Any]) -> nn.Module:
        import emulators.lulc.unet  # noqa: F401  (registers "lulc_unet")
        from emulators.nets import registry

        return registry.build(self.architecture, config)

    def architecture_config(self, config: Any, model: nn.Module) -> dict[str, Any]:
        return dataclasses.asdict(model.config)  # type: ignore[call-overload]

    def export_spec(self, model: nn.Module, config: dict[str, Any]) -> ExportSpec:
        from emulators.lulc.export import spec

        return spec(model, config)  # type: ignore[arg-type]

    def evaluate_at(
        self, directory: Path, out_dir: Path, cache: Path | None, progress: bool
    ) -> Manifest:
        """The shipped TorchScript artifact and the baselines on the held-out test regions
        (``cache`` unused: the test data take ≈ 1 min to rebuild)."""
        from emulators.lulc import report

        return report.evaluate(directory, out_dir)
