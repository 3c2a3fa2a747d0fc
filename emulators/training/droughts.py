"""Years without rain in ``flux-lstm-daily``'s training weather (issue 14; docs/emulators.md,
"Years without rain").

Ten of the daily emulator's 15 held-out sources carry no precipitation (their records have none,
or it is missing and taken as zero: EPW Amsterdam, BSRN Payerne, TMY2 Miami, PVGIS Italy, PSM3
Colorado, SolarAnywhere Burlington, the CGMS stations Asturias, Sweden, Munich and Ronda), so
their soils dry all year; every daily training source rains (synthetic cells and Wageningen). On
those ten sources the shipped network's LE is low by 0.6-1.9 W m-2 over the year (up to 3 W m-2
in dry soil at Amsterdam and Sweden) and its H high by about as much, while at the four rainy
held-out sources the LE bias is below 0.4 W m-2: a regime the training never saw, and the likely
cause of most of its misses by mean error alone. (The hourly ``flux-lstm`` trains on a year
without rain: EPW Amsterdam, its missing precipitation taken as zero.) Here the daily training
gets widened synthetic cells without rain (``SourceSpec.pr_scale`` (0, 0)) and with less rain
than their climate ((0, 1)); validation a rain-free seed as well.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from emulators.training.data import SourceSpec
from emulators.training.heights import DAILY_SPUN_INIT, DAILY_SPUN_INIT_SHA256
from emulators.training.widened import DAILY_WIDE, wide

#: one year of 96 widened cells without rain, two years of 96 with 0-1x their climate's rain
DRY_DAILY_SPECS: tuple[SourceSpec, ...] = (
    dataclasses.replace(wide(81, 96, days=365), pr_scale=(0.0, 0.0)),
    dataclasses.replace(wide(82, 96, days=730), pr_scale=(0.0, 1.0)),
)
#: early stopping and the spin-up choice see a rain-free year too
DRY_DAILY_VALIDATION: SourceSpec = dataclasses.replace(wide(83, 24, days=365), pr_scale=(0.0, 0.0))

#: ``get("flux-lstm-daily", **DAILY_DRY)``: the shipped daily recipe's sources and validation
#: with :data:`DRY_DAILY_SPECS` and :data:`DRY_DAILY_VALIDATION`, continued from the shipped
#: network (``heights.DAILY_SPUN_INIT``) for 12 epochs at Adam 3e-4 -> 3e-5 (the budget of its
#: own continuation), spin-up 1 in the windows as before
DAILY_DRY: dict[str, Any] = {
    "train": (*DAILY_WIDE["train"], *DRY_DAILY_SPECS),
    "validation": (*DAILY_WIDE["validation"], DRY_DAILY_VALIDATION),
    "epochs": 12,
    "lr": 3e-4,
    "lr_final": 3e-5,
    "init": DAILY_SPUN_INIT,
    "init_sha256": DAILY_SPUN_INIT_SHA256,
}

#: the two variants run after :data:`DAILY_DRY` missed its rule by 5e-6 (pooled fresh first-two-
#: day H NSE 0.005005 lower; docs/emulators.md, "Years without rain"): ``"lr"`` at Adam 1e-3 ->
#: 3e-5 (its validation had hardly moved in 12 epochs at 3e-4), ``"cold"`` with the fresh
#: windows' loss weighted twice (``cold_weight`` 2); each ``get("flux-lstm-daily",
#: **DRY_VARIANTS[k])``
DRY_VARIANTS: dict[str, dict[str, Any]] = {
    "lr": {**DAILY_DRY, "lr": 1e-3},
    "cold": {**DAILY_DRY, "cold_weight": 2.0},
}
