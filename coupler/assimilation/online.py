"""Online ensemble assimilation for a land domain, between coupled steps.

An :class:`EnsembleAssimilator` owns what the ensemble needs beyond the land state: the forcing
perturbation series, the observation history, the queued observations and the adaptive
inflation. Per step the caller (a session, or the twin experiment)::

    forcing = da.perturb(forcing, clock)           # member-specific forcing
    state, outputs = backend.step(state, static, forcing, clock)
    da.record(outputs, clock)                      # observation operators' history
    state, static, diag = da.analyse(state, static)  # when observations are queued

Observations are validated when submitted (:meth:`submit`): they are mapped to cells
(``in_domain``), their windows must be complete and in the history (``window``); a refused batch
leaves everything unchanged. The analysis runs :func:`coupler.assimilation.filters.analyse` on
the state vector of :class:`~coupler.assimilation.landstate.LandLayout` augmented with the
observed ensemble (as DART's joint state–observation update, so that inflation treats both
alike), localised by great-circle Gaspari–Cohn distance between cells.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from coupler.assimilation.config import InflationKind
from coupler.assimilation.diagnostics import Diagnostics, by_type
from coupler.assimilation.filters import analyse
from coupler.assimilation.landstate import LandLayout
from coupler.assimilation.localization import Localization
from coupler.assimilation.operators import ObservationBuffer, ObservationSet, locate
from coupler.assimilation.perturb import (
    forcing_noise,
    perturb_forcing,
    perturb_leaf_carbon,
    perturb_parameters,
)
from coupler.assimilation.settings import KINDS, WINDOWS, AssimilationConfig
from coupler.assimilation.state import Bounds
from emulators.landstep.nitrogen import follow_carbon
from emulators.protocol import LandState, LandStatic, StepClock


class EnsembleAssimilator:
    """Per-domain assimilation state (see the module docstring)."""

    def __init__(
        self, config: AssimilationConfig, cover: torch.Tensor, lat: np.ndarray, lon: np.ndarray
    ) -> None:
        self.config = config
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        estimated = config.parameters.priors if config.estimate_parameters else ()
        self.layout = LandLayout(cover, config.fields, estimated)
        self.buffer = ObservationBuffer(config.keep_days, config.keep_steps)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.enkf_generator = torch.Generator().manual_seed(config.seed + 1)
        self.noise: dict[str, torch.Tensor] | None = None
        self.inflation: torch.Tensor | None = None
        self.pending: list[ObservationSet] = []
        self.history: list[Diagnostics] = []
        self._bounds: Bounds = self.layout.bounds()

    # ---- ensemble generation -----------------------------------------------------------------
    def perturb_static(self, static: LandStatic) -> LandStatic:
        """Static fields with the configured parameters drawn per member, cell and class."""
        params = perturb_parameters(static.params, self.config.parameters, self.generator)
        return LandStatic(static.lat, static.lon, static.cover, params)

    def perturb(
        self, forcing: Mapping[str, torch.Tensor], clock: StepClock, members: int
    ) -> dict[str, torch.Tensor]:
        """Member-specific forcing (member, cell) for this step (advances the noise series)."""
        n_cells = self.lat.shape[0]
        self.noise = forcing_noise(
            self.noise, (members, n_cells), clock.dt, self.config.perturbation, self.generator
        )
        return perturb_forcing(forcing, self.noise, self.config.perturbation)

    def perturb_initial(self, state: LandState) -> LandState:
        """Initial LAI uncertainty: leaf carbon times a lognormal factor per member and cell
        (sd ``initial_leaf_carbon_sd``), a new object (the input is returned when sd is 0)."""
        sd = self.config.initial_leaf_carbon_sd
        if sd == 0.0:
            return state
        cleaf = perturb_leaf_carbon(state.tensors["cleaf"], sd, self.generator)
        return LandState(follow_carbon({**state.tensors, "cleaf": cleaf}))

    def perturb_state(self, state: LandState) -> LandState:
        """Daily model-error perturbation of the state (leaf carbon), a new object."""
        sd = self.config.leaf_carbon_sd
        if sd == 0.0:
            return state
        cleaf = perturb_leaf_carbon(state.tensors["cleaf"], sd, self.generator)
        return LandState(follow_carbon({**state.tensors, "cleaf": cleaf}))

    # ---- observations ------------------------------------------------------------------------
    def record(self, outputs: Mapping[str, torch.Tensor], clock: StepClock) -> None:
        self.buffer.record(outputs, clock.time, clock.dt)

    def locate(
        self,
        variable: str,
        values: np.ndarray,
        errors: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        times: np.ndarray,
        prefix: str = "",
    ) -> ObservationSet:
        """Map one (already validated) batch to cells and check its windows; raises
        InvalidArgument without changing anything."""
        obs = locate(
            variable,
            values,
            errors,
            lat,
            lon,
            times,
            self.lat,
            self.lon,
            self.config.match_km,
            prefix,
        )
        self.buffer.check(obs, prefix)
        return obs

    def submit(self, batches: Sequence[ObservationSet]) -> int:
        """Queue located observation sets for the next analysis (all or none)."""
        merged = ObservationSet.concat(list(batches))
        self.buffer.check(merged)
        self.pending.append(merged)
        return len(merged)

    # ---- transactions and checkpoints ------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything :meth:`perturb`, :meth:`record`, :meth:`submit` and :meth:`analyse`
        change, cheaply (references and shallow copies; tensors are never modified in place),
        for :meth:`restore` when the step they belong to fails."""
        return {
            "generator": self.generator.get_state(),
            "enkf_generator": self.enkf_generator.get_state(),
            "noise": self.noise,
            "inflation": self.inflation,
            "pending": list(self.pending),
            "history": len(self.history),
            "buffer": self.buffer.state_dict(),
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        """Undo everything done since :meth:`snapshot` returned ``snap``."""
        self.generator.set_state(snap["generator"])
        self.enkf_generator.set_state(snap["enkf_generator"])
        self.noise = snap["noise"]
        self.inflation = snap["inflation"]
        self.pending = list(snap["pending"])
        del self.history[snap["history"] :]
        self.buffer.load_state_dict(snap["buffer"])

    def state_dict(self) -> dict[str, Any]:
        """The assimilator's state as plain types and tensors (checkpoints load it with
        ``torch.load(weights_only=True)``): generators, forcing noise, inflation, history of
        the observation operators, queued observations and the per-analysis diagnostics."""
        return {
            "generator": self.generator.get_state(),
            "enkf_generator": self.enkf_generator.get_state(),
            "noise": None if self.noise is None else dict(self.noise),
            "inflation": self.inflation,
            "pending": [o.to_tensors() for o in self.pending],
            "history": json.dumps([d.to_dict() for d in self.history]),
            "buffer": self.buffer.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.enkf_generator.set_state(state["enkf_generator"])
        self.noise = None if state["noise"] is None else dict(state["noise"])
        self.inflation = state["inflation"]
        self.pending = [ObservationSet.from_tensors(o) for o in state["pending"]]
        self.history = [Diagnostics.from_dict(d) for d in json.loads(state["history"])]
        self.buffer.load_state_dict(state["buffer"])

    # ---- analysis ----------------------------------------------------------------------------
    def analyse(
        self, state: LandState, static: LandStatic, truth: torch.Tensor | None = None
    ) -> tuple[LandState, LandStatic, Diagnostics | None]:
        """Assimilate the queued observations into ``state`` (and the estimated parameters in
        ``static``); returns new objects (inputs untouched) and the diagnostics, or the inputs
        and None when nothing is queued. ``truth``: optional (M,) true state vector."""
        if not self.pending:
            return state, static, None
        obs = ObservationSet.concat(self.pending)
        self.buffer.check(obs)
        self.pending = []
        E = self.layout.to_vector(state, static)
        HE = self.buffer.observed(obs)
        m, p = E.shape[1], len(obs)
        sites = self.layout.sites()
        Z = torch.cat([E, HE], dim=1)  # joint state–observation ensemble
        loc = Localization.sphere(
            self.lat,
            self.lon,
            np.concatenate([sites, obs.cell]),
            self.lat[obs.cell],
            self.lon[obs.cell],
            self.config.half_width_km,
        )
        loc = loc.scaled(*self._impact(obs, p))
        lam = self._joint_inflation(m, sites, obs.cell)
        lo, hi = self._bounds.lo, self._bounds.hi
        inf = torch.full((p,), math.inf, dtype=torch.float64)
        bounds = Bounds(torch.cat([lo, -inf]), torch.cat([hi, inf]))
        y = torch.from_numpy(obs.value)
        R = torch.from_numpy(obs.error_sd) ** 2
        result = analyse(
            Z,
            lambda X: X[:, m:],
            y,
            R,
            self.config.filter,
            localization=loc,
            bounds=bounds,
            inflation=lam,
            generator=self.enkf_generator,
        )
        diag = result.diagnostics
        lam_obs = result.inflation[m:]
        diag = dataclasses.replace(
            diag,
            by_type=by_type(
                obs.variable, HE, y, result.reason, lam_obs, posterior=result.ensemble[:, m:]
            ),
        )
        if truth is not None:
            diag = _with_truth(diag, Z[:, :m], result.ensemble[:, :m], truth)
        if self.config.filter.inflation.kind is InflationKind.ADAPTIVE:
            self.inflation = result.inflation[:m].clone()
        new_state, new_static = self.layout.from_vector(result.ensemble[:, :m], state, static)
        self.history.append(diag)
        return new_state, new_static, diag

    def _impact(self, obs: ObservationSet, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(obs group, column group, table) for :meth:`Localization.scaled`."""
        variables = list(WINDOWS)
        table = np.zeros((len(variables), len(KINDS)))
        table[:, KINDS.index("observed")] = 1.0
        for var, kinds in self.config.impact:
            for kind in kinds:
                table[variables.index(var), KINDS.index(kind)] = 1.0
        names = self.layout.names()
        col = [KINDS.index("param" if n.startswith("param:") else n) for n in names]
        col += [KINDS.index("observed")] * (2 * p)  # observed ensembles as state, and as priors
        obs_group = np.array([variables.index(v) for v in obs.variable], dtype=np.int64)
        return obs_group, np.asarray(col, dtype=np.int64), table

    def _joint_inflation(
        self, m: int, sites: np.ndarray, obs_cell: np.ndarray
    ) -> torch.Tensor | None:
        """λ for [state | observed] columns: the state's own, and for each observation the mean
        λ of its cell's state columns."""
        if (
            self.config.filter.inflation.kind is not InflationKind.ADAPTIVE
            or self.inflation is None
        ):
            return None
        lam = self.inflation
        s = torch.from_numpy(sites)
        total = torch.zeros(self.lat.shape[0], dtype=torch.float64).index_add_(0, s, lam)
        count = torch.zeros(self.lat.shape[0], dtype=torch.float64).index_add_(
            0, s, torch.ones_like(lam)
        )
        per_cell = torch.where(count > 0, total / count.clamp_min(1), torch.ones_like(total))
        return torch.cat([lam, per_cell[torch.from_numpy(obs_cell)]])


def _with_truth(
    diag: Diagnostics, prior: torch.Tensor, post: torch.Tensor, truth: torch.Tensor
) -> Diagnostics:
    from coupler.assimilation import ensemble as ens

    return dataclasses.replace(
        diag,
        rmse_prior=ens.rmse(ens.mean(prior), truth),
        rmse_posterior=ens.rmse(ens.mean(post), truth),
    )
