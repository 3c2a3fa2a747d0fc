"""The emulator suite: one entry per shipped emulator, with how to train, export and evaluate it.

Each entry names functions as ``"module:function"`` (imported lazily, so listing the suite imports
no training code). ``train(artifacts, work, progress)`` trains from scratch and writes the
artifacts, manifest and skill; ``export(artifacts, work)`` re-exports the last trained checkpoint;
``evaluate(artifacts, out_dir, progress)`` writes the skill report and updates the manifest.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    name: str
    architecture: str
    artifact_dir: str  # under emulators/artifacts/
    description: str
    train: str
    evaluate: str
    export: str | None = None

    def function(self, action: str) -> Callable[..., Any]:
        target = getattr(self, action, None)
        if not target:
            raise ValueError(
                f"{self.name}: no {action!r} step; available: train, evaluate"
                + (", export" if self.export else "")
            )
        module, func = target.split(":")
        fn: Callable[..., Any] = getattr(importlib.import_module(module), func)
        return fn


SUITE: dict[str, Entry] = {
    "flux-lstm": Entry(
        "flux-lstm",
        "flux_lstm",
        "flux_lstm",
        "multi-task gated LSTM flux emulator (MdPL), hourly, recurrent state explicit",
        train="emulators.training.pipeline:train_flux_lstm",
        evaluate="emulators.training.pipeline:evaluate_flux_lstm",
    ),
    "flux-lstm-daily": Entry(
        "flux-lstm-daily",
        "flux_lstm",
        "flux_lstm_daily",
        "the flux_lstm architecture trained at 86 400 s (daily) steps, for coupled runs",
        train="emulators.training.pipeline:train_flux_lstm_daily",
        evaluate="emulators.training.pipeline:evaluate_flux_lstm_daily",
    ),
    "flux-transformer": Entry(
        "flux-transformer",
        "flux_transformer",
        "flux_transformer",
        "windowed Transformer flux emulator (Trans-LAI) with energy/water penalties",
        train="emulators.training.transformer:train_flux_transformer",
        evaluate="emulators.training.transformer:evaluate_flux_transformer",
    ),
    "lai": Entry(
        "lai",
        "lai",
        "lai",
        "daily LAI emulator (MLP on daily aggregates of hourly land steps, free-running)",
        train="emulators.training.lai_pipeline:train_lai",
        evaluate="emulators.training.lai_pipeline:evaluate_lai",
    ),
    "lai-daily": Entry(
        "lai-daily",
        "lai",
        "lai_daily",
        "the lai architecture trained at 86 400 s (daily) land steps, for coupled runs",
        train="emulators.training.lai_pipeline:train_lai_daily",
        evaluate="emulators.training.lai_pipeline:evaluate_lai_daily",
    ),
    "lulc-unet": Entry(
        "lulc-unet",
        "lulc_unet",
        "lulc_unet",
        "LULC downscaling U-Net (AI4Land): coarse class fractions + fine static features -> "
        "fine fractions conserving the coarse ones exactly",
        train="emulators.lulc.pipeline:train_lulc_unet",
        evaluate="emulators.lulc.pipeline:evaluate_lulc_unet",
        export="emulators.lulc.pipeline:export_lulc_unet",
    ),
}


def entry(name: str) -> Entry:
    try:
        return SUITE[name]
    except KeyError:
        raise ValueError(f"unknown emulator {name!r}; known: {', '.join(sorted(SUITE))}") from None
