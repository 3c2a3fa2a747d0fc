"""Widened training weather for ``flux-lstm`` (issue 14, item 2; docs/emulators.md, "Widened
training weather"): synthetic cells from sea level to 3000 m (lower pressure, colder, drier air
and clearer sky), with weak to normal wind (0.3-1.5 x the climatological mean, log-uniform) and
drier air (relative humidity -0.3 .. +0.05). The held-out real sources the sea-level cells
missed are high (NSRDB PSM3 Colorado, 788 hPa), calm (PVGIS Italy, CGMS Ronda: mean wind
1.2 m/s) and dry (Colorado: RH 0.53 vs 0.69). ``get("flux-lstm", **WIDE_OPTIONS)`` trains the
first 8-epoch candidate (not shipped); :data:`CANDIDATES` are the later ones, and the shipped
``flux-lstm`` is candidate G (:func:`hourly_config`: the ``flux-lstm`` recipe's config)."""

from __future__ import annotations

import dataclasses
from typing import Any

from emulators.training import flux
from emulators.training.data import SourceSpec
from emulators.training.flux import FluxTrainConfig
from emulators.training.flux_cold import COLD_TERMS
from emulators.training.lai import DAILY_EXTRA_SOURCES
from emulators.training.sources import (
    DAILY_TRAIN_SOURCES,
    DAILY_VALIDATION_SOURCES,
    TRAIN_SOURCES,
    VALIDATION_SOURCES,
)

ELEVATION = (0.0, 3000.0)  # m, uniform
WIND_SCALE = (0.3, 1.5)  # log-uniform
RH_OFFSET = (-0.3, 0.05)  # uniform


def wide(seed: int, cells: int, days: int = 365) -> SourceSpec:
    """Synthetic cells of ``seed`` over :data:`ELEVATION`, :data:`WIND_SCALE`, :data:`RH_OFFSET`
    (``days`` of weather)."""
    return SourceSpec(
        "synthetic",
        seed=seed,
        cells=cells,
        days=days,
        elevation=ELEVATION,
        wind_scale=WIND_SCALE,
        rh_offset=RH_OFFSET,
    )


WIDE_TRAIN_SOURCES: tuple[SourceSpec, ...] = (
    *TRAIN_SOURCES,
    wide(16, 48),
    wide(17, 48),
)
WIDE_VALIDATION_SOURCES: tuple[SourceSpec, ...] = (
    *VALIDATION_SOURCES,
    wide(22, 16),
)
#: ``get("flux-lstm", **WIDE_OPTIONS)``: from scratch on the widened weather, with fresh-start
#: windows and zero-state restarts (``flux_cold``) from the first epoch; 8 epochs (the budget of
#: the measured candidate, docs/emulators.md "Widened training weather")
WIDE_OPTIONS: dict[str, Any] = {
    "options": {},  # the network of FluxTrainConfig (H = 32), whatever the shipped recipe's
    "epochs": 8,
    "train": WIDE_TRAIN_SOURCES,
    "validation": WIDE_VALIDATION_SOURCES,
    **COLD_TERMS,
}

#: two more real Dutch station years (Wageningen 1986 and 1987, never held out): candidate D
#: made Wageningen 1995 worse, the one source every widened candidate did (docs/emulators.md)
DUTCH_YEARS: tuple[SourceSpec, ...] = tuple(
    SourceSpec("pcse-wageningen", seed=seed, replicas=16, options={"years": (year, year)})
    for seed, year in ((18, 1986), (19, 1987))
)

#: the measured candidates on this weather (docs/emulators.md, "Widened training weather"), each
#: ``get("flux-lstm", **CANDIDATES[k])``: C the same options at 24 epochs; D with H = 48; E with
#: the Penman–Monteith inputs derived inside the network (``flux_lstm`` option ``physics``); F is
#: D with :data:`DUTCH_YEARS` added to the training weather; G is F with two more widened
#: synthetic seeds (23, 24: 96 more high, calm and dry cells)
CANDIDATES: dict[str, dict[str, Any]] = {
    "C": {**WIDE_OPTIONS, "epochs": 24},
    "D": {**WIDE_OPTIONS, "epochs": 24, "options": {"hidden": 48}},
    "E": {**WIDE_OPTIONS, "epochs": 24, "options": {"physics": True}},
    "F": {
        **WIDE_OPTIONS,
        "epochs": 24,
        "options": {"hidden": 48},
        "train": (*WIDE_TRAIN_SOURCES, *DUTCH_YEARS),
    },
}
CANDIDATES["G"] = {
    **CANDIDATES["F"],
    "train": (*CANDIDATES["F"]["train"], wide(23, 48), wide(24, 48)),
}

#: the candidate ``flux-lstm`` ships (2026-12-06; docs/emulators.md, "Candidates F and G")
SHIPPED = "G"


def hourly_config() -> FluxTrainConfig:
    """The training config of candidate G, the ``flux-lstm`` shipped from 2026-12-06 until the
    network with the measurement heights continued it (``training.heights``, 2026-12-07):
    :data:`CANDIDATES` [:data:`SHIPPED`]."""
    return dataclasses.replace(FluxTrainConfig(), **CANDIDATES[SHIPPED])


#: ``flux-lstm-daily`` given what made ``flux-lstm`` hold on unseen weather (issue 14; docs/
#: emulators.md, "The daily flux emulator on widened weather"; shipped 2026-12-07):
#: ``lai-daily``'s extra daily weather (a fourth synthetic seed, Wageningen 1986-1989), two
#: widened daily seeds (47, 48: high, calm and dry cells, two years each), H = 48, fresh-start
#: windows of 14 days and zero-state restarts from the first epoch, 24 epochs; validation adds a
#: widened seed (52). :func:`daily_config` was the ``flux-lstm-daily`` recipe's config until its
#: continuation (:data:`DAILY_SPUN`).
DAILY_WIDE: dict[str, Any] = {
    "options": {"hidden": 48},
    "epochs": 24,
    "train": (
        *DAILY_TRAIN_SOURCES,
        *DAILY_EXTRA_SOURCES,
        wide(47, 96, days=730),
        wide(48, 96, days=730),
    ),
    "validation": (*DAILY_VALIDATION_SOURCES, wide(52, 24, days=730)),
    **COLD_TERMS,
    "cold_window": 14,
}


def daily_config() -> FluxTrainConfig:
    """The training config of the ``flux-lstm-daily`` shipped in the morning of 2026-12-07 (what
    :func:`daily_spun_config` continues): the first daily split (``flux.daily_config``,
    2026-11-23) with :data:`DAILY_WIDE`."""
    return dataclasses.replace(flux.daily_config(), **DAILY_WIDE)


def continuation(
    init: str, sha256: str, spin_up: int, epochs: int, lr_final: float
) -> dict[str, Any]:
    """Training options that continue the shipped network pinned as ``init`` (its sha256 prefix
    ``sha256``) for ``epochs`` epochs at Adam 3e-4 -> ``lr_final`` (a tenth of the first
    trainings' rates), with the rows that start a window from a zero recurrent state spun up by
    ``spin_up`` iterations first, as the served backend spins them up
    (``FluxTrainConfig.train_spin_up``; issue 14, item 1)."""
    return {"train_spin_up": spin_up, "epochs": epochs, "lr": 3e-4, "lr_final": lr_final,
            "init": init, "init_sha256": sha256}  # fmt: skip


#: the ``flux-lstm-daily`` shipped on the morning of 2026-12-07 (:func:`daily_config`)
DAILY_WIDE_INIT = "flux_lstm_daily/init/flux_lstm_daily-2026-12-07.ts"
DAILY_WIDE_INIT_SHA256 = "720aafe7be5fdf97"
#: ``flux-lstm-daily`` continued with the served start in its windows: the backend spun a zero
#: recurrent state up (``recurrent_state.spin_up``, 1 for that network) before a fresh or
#: resumed row's first step, but the fresh windows and zero-state restarts of
#: :data:`DAILY_WIDE` trained from the zero state itself. 12 epochs. Shipped 2026-12-07 (82 -> 96
#: of 210 held-out rows; 93 with 6 epochs; docs/emulators.md, "Spin-up in the training
#: windows"): :func:`daily_spun_config` is the ``flux-lstm-daily`` recipe's config.
DAILY_SPUN = continuation(DAILY_WIDE_INIT, DAILY_WIDE_INIT_SHA256, 1, 12, 3e-5)


def daily_spun_config() -> FluxTrainConfig:
    """:func:`daily_config` with :data:`DAILY_SPUN`."""
    return dataclasses.replace(daily_config(), **DAILY_SPUN)


#: the ``flux-lstm`` shipped on 2026-12-06 (:func:`hourly_config`)
HOURLY_INIT = "flux_lstm/init/flux_lstm-2026-12-07.ts"
HOURLY_INIT_SHA256 = "2c9676d282050857"
#: ``flux-lstm`` continued the same way, spun up by 3 (its served K), 6 epochs. Not shipped (a
#: probe of 2026-12-07: 155 -> 154 of 196 held-out rows); ``get("flux-lstm", **HOURLY_SPUN)``
#: reruns it.
HOURLY_SPUN = continuation(HOURLY_INIT, HOURLY_INIT_SHA256, 3, 6, 2e-5)

#: an ensemble of two seeds of candidate G (issue 14, items 1-2; docs/emulators.md, "Other seeds
#: and an ensemble of seeds"): the network shipped on 2026-12-06 (seed 0, pinned as
#: :data:`HOURLY_INIT`) and the same recipe trained from seed 1, merged into one wider
#: ``flux_lstm`` (H = 96, K = 32; ``nets.flux_ensemble``) that serves their mean. Not shipped (a
#: probe of 2026-12-07: 155 -> 157 of 196 held-out rows at about 1.6-1.8x the step's cost);
#: ``get("flux-lstm", **CANDIDATES["E2"])`` reruns it.
CANDIDATES["E2"] = {
    **CANDIDATES["G"],
    "seed": 1,
    "members": ((HOURLY_INIT, HOURLY_INIT_SHA256),),
}
