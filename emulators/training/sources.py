"""The training weather of the flux emulators (``flux-lstm`` spun-up and ``flux-lstm-daily``):
which sources train and which stop early. Here, not in ``training.flux``, so that
``training.flux_cold`` (imported by it) can pin them. Held out: ``training.evaluate``."""

from __future__ import annotations

from emulators.training.data import SourceSpec

# The first split (``FluxTrainConfig``'s default; the spun-up ``flux-lstm`` of 2026-11-23).
# Training: three synthetic seeds (global random cells) and two real station years; validation
# (early stopping): a fourth synthetic seed. Evaluation (``evaluate``) uses other seeds, sites and
# years, never seen here. ``training.widened`` adds to it.
TRAIN_SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("synthetic", seed=11, cells=48),
    SourceSpec("synthetic", seed=12, cells=48),
    SourceSpec("synthetic", seed=13, cells=48),
    SourceSpec("epw-amsterdam", seed=14, replicas=16, options={"missing_pr": "zero"}),
    SourceSpec("pcse-wageningen", seed=15, replicas=16, options={"years": (1985, 1985)}),
)
VALIDATION_SOURCES: tuple[SourceSpec, ...] = (SourceSpec("synthetic", seed=21, cells=24),)

# The daily emulator (``flux-lstm-daily``): reference trajectories at 86 400 s steps are ~24x
# cheaper, so more synthetic cells (random land cells from 58 S to 72 N: tropical to boreal) and
# two years each; real station years: Wageningen 1984-1985. Early stopping: another synthetic
# seed. Held out (``evaluate.FLUX_DAILY_HELD_OUT``): another seed, the TMY3 stations, Amsterdam,
# Wageningen 1995 and Payerne.
DAILY_TRAIN_SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("synthetic", seed=41, cells=96, days=730),
    SourceSpec("synthetic", seed=42, cells=96, days=730),
    SourceSpec("synthetic", seed=43, cells=96, days=730),
    SourceSpec("pcse-wageningen", seed=45, replicas=16, options={"years": (1984, 1985)}),
)
DAILY_VALIDATION_SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("synthetic", seed=51, cells=48, days=730),
)
