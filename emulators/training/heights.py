"""A ``flux-lstm`` that takes the forcing's measurement heights (issue 14; docs/emulators.md,
"The forcing's measurement heights").

Sessions carry the heights of their forcing (``height_wind``, ``height_temperature``); the
reference runs at them, and a network without a height input can only guess them from the
weather (it met 3 of Payerne's 14 held-out rows at 2 m / 2 m, all 14 against the reference at
10 m / 2 m). Here the network gets them as two more inputs (``features.HEIGHT_FEATURES``:
their logarithms) and trains on reference runs at several heights: the shipped sources at their
own (10 m / 2 m, Wageningen's 2 m / 1.5 m) and widened synthetic cells at :data:`HEIGHT_SPECS`'
heights, two of them the weather of training seeds 16 and 17 again. It continues the network
shipped on 2026-12-06 (``widened.HOURLY_INIT``), whose input weights for the new features
start at zero (``flux_cold.load_init``): at the first step it is that network, at every height.
A backend serves the heights inside the ranges its manifest records (``training.heights``) and
refuses others (``artifacts.HeightsError``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from emulators.compiled.features import HEIGHT_FEATURES, N_FLUX_FEATURES
from emulators.training.data import SourceSpec
from emulators.training.flux import FluxTrainConfig
from emulators.training.widened import (
    CANDIDATES,
    DAILY_WIDE,
    HOURLY_INIT,
    HOURLY_INIT_SHA256,
    wide,
)

#: widened synthetic cells (32 each) whose reference runs at other (wind, temperature) heights
#: [m]: a 2-m station mast, the lowest levels of atmospheric models (30 m, 60 m), and a wind
#: height above the temperature height
HEIGHT_SPECS: tuple[SourceSpec, ...] = (
    dataclasses.replace(wide(16, 32), heights=(2.0, 2.0)),
    dataclasses.replace(wide(17, 32), heights=(30.0, 30.0)),
    dataclasses.replace(wide(41, 32), heights=(60.0, 60.0)),
    dataclasses.replace(wide(42, 32), heights=(40.0, 10.0)),
)

#: ``get("flux-lstm", **HEIGHTS)`` (shipped 2026-12-07, night: 155 -> 173 of 196 held-out rows;
#: :func:`hourly_config` is the ``flux-lstm`` recipe's config): candidate G's sources and
#: :data:`HEIGHT_SPECS`, the network with the height features, continued from
#: :data:`widened.HOURLY_INIT` for 6 epochs at Adam 5e-4 -> 1e-4 (the budget of the one-height
#: probe of 2026-12-07)
HEIGHTS: dict[str, Any] = {
    **CANDIDATES["G"],
    "options": {"hidden": 48, "n_features": N_FLUX_FEATURES + len(HEIGHT_FEATURES)},
    "train": (*CANDIDATES["G"]["train"], *HEIGHT_SPECS),
    "epochs": 6,
    "lr": 5e-4,
    "lr_final": 1e-4,
    "init": HOURLY_INIT,
    "init_sha256": HOURLY_INIT_SHA256,
}


def hourly_config() -> FluxTrainConfig:
    """The training config of the shipped ``flux-lstm``: candidate G (``widened``) with
    :data:`HEIGHTS`."""
    return dataclasses.replace(FluxTrainConfig(), **HEIGHTS)


#: the ``flux-lstm-daily`` shipped on 2026-12-07 (``widened.daily_spun_config``): what
#: :data:`DAILY_HEIGHTS` continues (the shipped file, by its SHA-256: a later daily network
#: refuses this probe's config by name instead of continuing another network)
DAILY_SPUN_INIT = "flux_lstm_daily/flux_lstm_daily.ts"
DAILY_SPUN_INIT_SHA256 = "a14990c0dac9aaf5"
#: :data:`HEIGHT_SPECS`' heights for the daily emulator: widened daily seeds, two years each
#: (seeds 71-74: the probe of 2026-12-07 night drew 61-64, and 61 is the daily held-out seed)
DAILY_HEIGHT_SPECS: tuple[SourceSpec, ...] = tuple(
    dataclasses.replace(wide(seed, 48, days=730), heights=heights)
    for seed, heights in (
        (71, (2.0, 2.0)),
        (72, (30.0, 30.0)),
        (73, (60.0, 60.0)),
        (74, (40.0, 10.0)),
    )
)
#: ``get("flux-lstm-daily", **DAILY_HEIGHTS)`` (not shipped: docs/emulators.md, "The daily
#: emulator with the heights"): the shipped daily recipe's sources and
#: :data:`DAILY_HEIGHT_SPECS`, the height inputs, continued from :data:`DAILY_SPUN_INIT` for 6
#: epochs at Adam 3e-4 -> 3e-5 (its own continuation's rates), spin-up 1 in the windows as before
DAILY_HEIGHTS: dict[str, Any] = {
    "options": {"hidden": 48, "n_features": N_FLUX_FEATURES + len(HEIGHT_FEATURES)},
    "train": (*DAILY_WIDE["train"], *DAILY_HEIGHT_SPECS),
    "epochs": 6,
    "lr": 3e-4,
    "lr_final": 3e-5,
    "init": DAILY_SPUN_INIT,
    "init_sha256": DAILY_SPUN_INIT_SHA256,
}
