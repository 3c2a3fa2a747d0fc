"""The data-assimilation hook of a session (sessions whose config has ``assimilation``).

One :class:`SessionAssimilation` per session wraps an
:class:`~coupler.assimilation.online.EnsembleAssimilator` and the optional Zarr observation
file. The session calls, per step (``coupler.core.session.Session._advance``)::

    state, static, diag = da.begin(state, static, clock)  # daily leaf-carbon noise; analysis
    forcing = da.perturb(forcing, clock)                  # member-specific forcing
    new_state, outputs = backend.step(state, static, forcing, clock)
    skipped = da.end(outputs, clock)                      # history; file observations now due

so observations queued before step k (by Assimilate between steps, or from the file at the end of
step k-1) are analysed at the start of step k, and step k's reply is computed by the backend from
the analysed ensemble: the atmosphere receives the analysed mean of every output (fluxes
included), for any backend. ``snapshot``/``restore`` make the step a transaction for the
assimilator too: everything the calls above change is put back when the step fails.

:meth:`assimilate` maps every observation of a request to the domain and checks its window
before anything is queued (InvalidArgument naming ``batches[i].<name>`` and the rule:
``in_domain``, ``window``, ``day_aligned``, ``observable``), so a refused request leaves the
ensemble and the queue as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from coupler.assimilation.diagnostics import Diagnostics
from coupler.assimilation.online import EnsembleAssimilator
from coupler.assimilation.operators import ObservationSet, locate
from coupler.assimilation.settings import AssimilationConfig
from coupler.core.obsfile import ObservationFile
from coupler.spec.observations import Parsed
from emulators.constants import SECONDS_PER_DAY
from emulators.protocol import LandState, LandStatic, StepClock

#: diagnostics of the last analyses kept in memory (and in checkpoints)
KEEP_DIAGNOSTICS = 100
#: the per-analysis scalars a record keeps (arrays ``assim_<name>`` along ``time``)
RECORD_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("n_obs", "1", "observations in the analysis"),
    ("n_used", "1", "observations assimilated"),
    ("n_rejected", "1", "observations rejected by screening"),
    ("innovation_mean", "", "mean innovation y - mean(hE) of the used observations"),
    ("innovation_rms", "", "RMS innovation of the used observations"),
    ("obs_prior_spread", "", "prior ensemble spread in observation space"),
    ("prior_spread", "", "prior ensemble spread of the state (mean over columns)"),
    ("posterior_spread", "", "posterior ensemble spread of the state (mean over columns)"),
    ("inflation_mean", "1", "mean variance inflation"),
    ("n_clipped", "1", "analysis values moved onto a bound"),
)


def record_row(diag: Diagnostics) -> dict[str, float]:
    """One analysis's record entries: ``assim_<field>`` and, per observation type,
    ``assim_<type>_<field>`` (NaN where undefined)."""
    row = {f"assim_{name}": float(getattr(diag, name)) for name, _, _ in RECORD_FIELDS}
    for var, stats in diag.by_type.items():
        for key, value in stats.items():
            row[f"assim_{var}_{key}"] = float(value)
    return row


class SessionAssimilation:
    """The assimilation state of one session (see the module docstring). ``lat``/``lon``:
    (cell,) degrees; ``cover``: (cell, class) fractions; ``members``: ensemble size."""

    def __init__(
        self,
        config: AssimilationConfig,
        lat: np.ndarray,
        lon: np.ndarray,
        cover: torch.Tensor,
        members: int,
    ) -> None:
        self.config = config
        self.members = int(members)
        self.da = EnsembleAssimilator(config, cover, lat, lon)
        self.file: ObservationFile | None = None
        #: Assimilate requests accepted so far (a request's serial number in the record is the
        #: count before it; checkpoints carry it, so a replay knows which are in a start state)
        self.requests = 0
        if config.observations_url is not None:
            self.file = ObservationFile.load(config.observations_url, self._locate_only)

    # ---- opening -----------------------------------------------------------------------------
    def perturb_static(self, static: LandStatic) -> LandStatic:
        """The session's static fields with the configured parameters drawn per member."""
        return self.da.perturb_static(static)

    def perturb_initial(self, state: LandState) -> LandState:
        """The initial ensemble: leaf carbon spread by ``initial_leaf_carbon_sd``."""
        return self.da.perturb_initial(state)

    # ---- the step ----------------------------------------------------------------------------
    def begin(
        self, state: LandState, static: LandStatic, clock: StepClock
    ) -> tuple[LandState, LandStatic, Diagnostics | None]:
        """Before the backend step: the daily model-error perturbation of leaf carbon (at
        00:00 UTC, after the first step), then the analysis of the queued observations."""
        seconds = int(np.asarray(clock.time).astype("datetime64[s]").astype(np.int64))
        if clock.index > 0 and seconds % SECONDS_PER_DAY == 0:
            state = self.da.perturb_state(state)
        return self.da.analyse(state, static)

    def perturb(self, forcing: Mapping[str, torch.Tensor], clock: StepClock) -> dict[str, Any]:
        return self.da.perturb(forcing, clock, self.members)

    def end(self, outputs: Mapping[str, torch.Tensor], clock: StepClock) -> dict[str, int]:
        """After the backend step: record the observation operators' history and queue the
        file's observations whose windows are now complete. Returns, per type, the file's
        observations that became due but cannot be assimilated (their window began before
        the session's history: rule ``window``)."""
        self.da.record(outputs, clock)
        if self.file is None or self.da.buffer.now is None:
            return {}
        due, cursor = self.file.due(self.da.buffer.now)
        self.file.cursor = cursor
        if not len(due):
            return {}
        ok = self.da.buffer.available(due)
        skipped: dict[str, int] = {}
        for var, good in zip(due.variable, ok, strict=True):
            if not good:
                skipped[var] = skipped.get(var, 0) + 1
        if ok.any():
            idx = np.nonzero(ok)[0]
            self.da.submit([_subset(due, idx)])
        return skipped

    # ---- observations ------------------------------------------------------------------------
    def assimilate(self, batches: Sequence[Parsed]) -> int:
        """Locate and check every batch (``batches[i].`` prefixes), then queue them all for
        the next step's analysis; returns the number queued. Raises before queueing anything."""
        sets = [
            self.da.locate(b.type, b.values, b.errors, b.lat, b.lon, b.times, f"batches[{i}].")
            for i, b in enumerate(batches)
        ]
        n = self.da.submit(sets)
        self.requests += 1
        return n

    def _locate_only(self, batch: Parsed, prefix: str) -> ObservationSet:
        """Map a file batch to cells (domain and day alignment; windows are checked when due)."""
        return locate(
            batch.type,
            batch.values,
            batch.errors,
            batch.lat,
            batch.lon,
            batch.times,
            self.da.lat,
            self.da.lon,
            self.config.match_km,
            prefix,
        )

    @property
    def pending(self) -> int:
        """Observations queued for the next analysis."""
        return sum(len(o) for o in self.da.pending)

    # ---- transactions and checkpoints ------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What :meth:`restore` needs to undo a step. Also trims the kept diagnostics to the
        last :data:`KEEP_DIAGNOSTICS` analyses (they go to metrics and the record; the
        checkpoint carries only these)."""
        del self.da.history[:-KEEP_DIAGNOSTICS]
        cursor = None if self.file is None else self.file.cursor
        return {"da": self.da.snapshot(), "cursor": cursor, "requests": self.requests}

    def restore(self, snap: Mapping[str, Any]) -> None:
        self.da.restore(snap["da"])
        self.requests = int(snap["requests"])
        if self.file is not None:
            self.file.cursor = int(snap["cursor"])

    def state_dict(self, static: LandStatic) -> dict[str, Any]:
        """Plain types and tensors for a checkpoint: the assimilator's state, the perturbed
        (and estimated) parameters, the observation file's cursor and fingerprint, and the
        number of Assimilate requests accepted."""
        return {
            "assimilator": self.da.state_dict(),
            "params": static.params.detach().clone(),
            "file_cursor": None if self.file is None else self.file.cursor,
            "file_sha256": None if self.file is None else self.file.fingerprint,
            "requests": self.requests,
        }

    def load_state_dict(self, state: Mapping[str, Any], static: LandStatic) -> LandStatic:
        """Restore from :meth:`state_dict`; returns the static fields with the stored
        parameters."""
        self.da.load_state_dict(state["assimilator"])
        self.requests = int(state.get("requests", 0))
        if self.file is not None and state.get("file_cursor") is not None:
            self.file.cursor = int(state["file_cursor"])
        params = state["params"]
        if tuple(params.shape) != tuple(static.params.shape):
            from coupler.errors import InvalidArgument

            raise InvalidArgument(
                f"resume_from: stored parameters of shape {tuple(params.shape)}, the session "
                f"needs {tuple(static.params.shape)}",
                field="resume_from",
                rule="state_shape",
            )
        return LandStatic(static.lat, static.lon, static.cover, params)


def _subset(obs: ObservationSet, idx: np.ndarray) -> ObservationSet:
    return ObservationSet(
        tuple(obs.variable[i] for i in idx),
        obs.cell[idx],
        obs.time[idx],
        obs.value[idx],
        obs.error_sd[idx],
    )
