"""Adding an emulator recipe: a variant of the LAI recipe with a wider MLP, registered by name,
trained for a few seconds on one synthetic cell, exported (TorchScript + ONNX, each checked against
eager) with its manifest — the same code path as ``landcoupler emulators train lai``.

    .venv/bin/python examples/add_recipe.py [OUT]     # writes OUT/artifacts/lai_wide/ (out/demo)

To ship a recipe, put its class in a module under ``emulators/recipes/`` and import that module in
``emulators/recipes/__init__.py``; ``landcoupler emulators train|export|evaluate NAME`` then knows
it (docs/emulators.md, "Recipes").
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from emulators.recipes import get, names, register
from emulators.recipes.lai import LAIRecipe
from emulators.training.data import SourceSpec
from emulators.training.lai import LAITrainConfig


@register("lai-wide")
@dataclass(frozen=True)
class WideLAIRecipe(LAIRecipe):
    """The LAI recipe (data, loss, export spec, evaluation) with a 128-wide MLP; its artifacts go
    to ``lai_wide/``."""

    description = "daily LAI emulator, 128-wide MLP"

    def config(self) -> LAITrainConfig:
        base = LAITrainConfig(artifact=self.artifact, options={"hidden": 128})
        config: LAITrainConfig = self.configured(base)  # + get(...)'s options, validated
        return config


def main(out: Path) -> None:
    assert "lai-wide" in names()
    cell = {"cells": 1, "spinup_days": 2}
    recipe = get(
        "lai-wide",
        epochs=20,
        eval_every=10,
        window=5,
        sample=100,
        train=(SourceSpec("synthetic", seed=11, days=40, **cell),),
        validation=(SourceSpec("synthetic", seed=21, days=20, **cell),),
    )
    manifest = recipe.train(
        artifacts=out / "artifacts", work=out, progress=False, compile_aoti=False, evaluate=False
    )
    print(
        f"{manifest.name}: {manifest.config}, export checks {manifest.export_checks}, "
        f"validation {manifest.training['history'][-1]}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/demo"))
