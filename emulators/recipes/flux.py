"""Recipes of the flux emulators: ``flux-lstm`` (hourly) and ``flux-lstm-daily`` — one recipe at
two timesteps — and ``flux-transformer`` (Trans-LAI, for comparison). Their evaluation is the same:
free-running over the held-out sources of their timestep (``training.evaluate.evaluate_flux``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulators.constants import SECONDS_PER_DAY as DAY
from emulators.recipes.base import Drift, Recipe, training_record
from emulators.recipes.registry import register

if TYPE_CHECKING:
    from torch import nn

    from emulators.export import ExportSpec
    from emulators.manifest import Manifest
    from emulators.training.trainer import TrainResult

#: after a retraining, the relative change of NSE, KGE and RMSE of LE and H per held-out source
#: (and per start and window of the cold-start rows, ``training.coldstart``)
FLUX_DRIFT = Drift(
    ("source", "start", "window", "variable"),
    {"variable": ("hfls", "hfss")},
    ("nse", "kge", "rmse"),
)


def matching(recipe: Recipe, config: Any) -> Any:
    """``config`` (with ``artifact`` and ``timestep`` fields) if they are the recipe's."""
    for name, want in (("artifact", recipe.artifact), ("timestep", recipe.timestep)):
        if getattr(config, name) != want:
            raise ValueError(
                f"{name}: {recipe.name} trains {name} {want!r}, got {getattr(config, name)!r} "
                "(another timestep is another registered recipe)"
            )
    return config


@dataclass(frozen=True)
class _FluxRecipe(Recipe):
    """What the flux recipes share: the network registry and the held-out evaluation."""

    def network(self, config: Mapping[str, Any]) -> nn.Module:
        from emulators.nets import registry

        return registry.build(self.architecture, config)

    def evaluate_at(
        self, directory: Path, out_dir: Path, cache: Path | None, progress: bool
    ) -> Manifest:
        """Held-out skill (``evaluate_flux``); an artifact whose manifest has no
        ``recurrent_state.spin_up`` yet (a new one) first gets it chosen on its validation
        sources (``training.spin_up.select``)."""
        from emulators import manifest
        from emulators.training import spin_up
        from emulators.training.evaluate import evaluate_flux

        if "spin_up" not in manifest.Manifest.load(directory).recurrent_state:
            spin_up.select(directory, cache=cache, progress=progress)
        return evaluate_flux(directory, out_dir, cache, progress)


@register("flux-lstm")
@register("flux-lstm-daily", timestep=DAY)
@dataclass(frozen=True)
class FluxLSTMRecipe(_FluxRecipe):
    """Multi-task gated LSTM (MdPL), recurrent state explicit, trained closed-loop on reference
    trajectories at ``timestep`` (3600 s: ``flux-lstm``; 86 400 s: ``flux-lstm-daily``, for
    coupled runs)."""

    architecture = "flux_lstm"
    description = "multi-task gated LSTM flux emulator (MdPL), recurrent state explicit"
    loss = (
        "MSE of the five outputs scaled by their std (T_s and LE after the constraint layer), "
        "closed-loop windows"
    )
    timesteps = (3600, DAY)
    drift = FLUX_DRIFT

    def config(self) -> Any:
        from emulators.training import heights, widened

        base = widened.daily_spun_config() if self.timestep == DAY else heights.hourly_config()
        return matching(self, self.configured(base))

    def fit(self, config: Any, work: Path, progress: bool) -> TrainResult:
        from emulators.training import flux
        from emulators.training.trainer import save_best

        result = flux.train(
            config, cache=work / "data", checkpoint_dir=work / "checkpoints", progress=progress
        )
        save_best(work / f"{config.artifact}-best.pt", result.model, config)
        return result

    def architecture_config(self, config: Any, model: nn.Module) -> dict[str, Any]:
        from emulators.compiled.closure import FLUX_OUTPUTS

        out = {
            "hidden": model.hidden,
            "head_hidden": int(model.head_w1.shape[2]),  # type: ignore[index]
            "n_features": int(model.inputs.mean.shape[0]),  # type: ignore[union-attr,index]
            "n_outputs": len(FLUX_OUTPUTS),
        }
        if model.physics:  # only when set: earlier manifests stay as they were
            out["physics"] = True
        return out

    def export_spec(self, model: nn.Module, config: dict[str, Any]) -> ExportSpec:
        from emulators.training import specs

        return specs.flux(
            architecture=self.architecture,
            config=config,
            inputs=model.inputs,  # type: ignore[arg-type]
            outputs=model.outputs,  # type: ignore[arg-type]
            state={
                "hidden": model.hidden,
                "c_width": model.hidden,
                "h": "LSTM hidden state",
                "c": "LSTM cell state",
            },
            timestep=self.timestep,
        )

    def training_record(self, config: Any, result: TrainResult, seconds: float) -> dict[str, Any]:
        from emulators.training import evaluate as ev

        held_out = ev.flux_held_out(config.timestep)
        return training_record(self.name, config, result, held_out, seconds)


@register("flux-transformer")
@dataclass(frozen=True)
class FluxTransformerRecipe(_FluxRecipe):
    """Windowed Transformer (Trans-LAI), teacher-forced with energy/water penalties; served (and
    exported) behind the recurrent convention by ``FluxTransformerStep``. ``--epochs N`` sets
    N thousand iterations."""

    architecture = "flux_transformer"
    description = "windowed Transformer flux emulator (Trans-LAI) with energy/water penalties"
    loss = "MSE + 0.3|energy residual| + 0.2|water residual| (raw outputs, Trans-LAI)"
    epochs_option = ("iterations", 1000)

    def config(self) -> Any:
        from emulators.training.transformer import shipped_config

        return self.configured(shipped_config())

    def fit(self, config: Any, work: Path, progress: bool) -> TrainResult:
        from emulators.training import transformer

        return transformer.train(config, cache=work / "data", progress=progress)

    def servable(self, model: nn.Module) -> nn.Module:
        from emulators.nets.flux import FluxTransformer, FluxTransformerStep

        if not isinstance(model, FluxTransformer):
            raise TypeError(f"{self.name}: expected a FluxTransformer, got {type(model).__name__}")
        return FluxTransformerStep(model).eval()

    def architecture_config(self, config: Any, model: nn.Module) -> dict[str, Any]:
        from emulators.nets import registry

        return dataclasses.asdict(registry.config(self.architecture, config.options))  # type: ignore[call-overload]

    def export_spec(self, model: nn.Module, config: dict[str, Any]) -> ExportSpec:
        from emulators.training import specs

        net = model.net  # FluxTransformerStep
        return specs.flux(
            architecture=self.architecture,
            config=config,
            inputs=net.inputs,  # type: ignore[union-attr,arg-type]
            outputs=net.outputs,  # type: ignore[union-attr,arg-type]
            state={
                "hidden": model.hidden,
                "c_width": 1,
                "h": f"normalised features of the previous {model.window - 1} steps",  # type: ignore[operator]
                "c": "unused",
            },
            timestep=self.timestep,
        )

    def training_record(self, config: Any, result: TrainResult, seconds: float) -> dict[str, Any]:
        from emulators.training import evaluate as ev

        return training_record(
            self.name, config, result, ev.FLUX_HELD_OUT, seconds, loss=self.loss, best_epoch=False
        )
