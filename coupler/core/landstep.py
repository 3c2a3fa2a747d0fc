"""The pure pieces of one coupled land step: numpy <-> (member, cell) tensors, ensemble
statistics of the replied fields, and the closure diagnostics. No session state lives here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from coupler.errors import FailedPrecondition
from coupler.spec import SessionSpec
from emulators.landstep import Remapped
from emulators.protocol import LandStatic, StepClock

Tensor = torch.Tensor


def build_static(config: SessionSpec) -> LandStatic:
    """Per-cell constants of a session: grid and land cover with the default parameters of each
    class, or the calibrated map of ``parameters_url`` (``parammap``), identical for every
    member (perturbed parameters arrive with assimilation)."""
    from coupler.core import parammap

    lat = torch.from_numpy(np.array(config.grid.lat))
    lon = torch.from_numpy(np.array(config.grid.lon))
    cover = torch.from_numpy(config.cover_fractions())
    static = LandStatic.from_cover(lat, lon, cover, members=config.members)
    params = parammap.apply_map(static.params, config)
    if params is static.params:
        return static
    return LandStatic(lat, lon, cover, params)


def clock_for(config: SessionSpec, index: int) -> StepClock:
    """The clock of step ``index``: starts at ``start + index * timestep`` (UTC), dt in s."""
    return StepClock(index, config.step_time(index), float(config.timestep))


def forcing_tensors(fields: Mapping[str, np.ndarray], members: int) -> dict[str, Tensor]:
    """(cell,) float64 arrays -> (member, cell) float64 tensors sharing their memory (a stride-0
    view across members: backends must not write into their forcing). One member: numpy's
    (1, cell) view taken by torch as is, without the two dispatched ops of ``unsqueeze`` and
    ``expand`` (0.55 µs per field instead of 2.2 µs; docs/benchmarks.md, "Many ranks")."""
    out: dict[str, Tensor] = {}
    for name, values in fields.items():
        if members == 1:
            out[name] = torch.from_numpy(values[None])
        else:
            out[name] = torch.from_numpy(values).expand(members, values.shape[0])
    return out


def _frozen(t: Tensor) -> np.ndarray:
    arr = t.detach().to(device="cpu", dtype=torch.float64).contiguous().numpy()
    arr.flags.writeable = False
    return arr


def reply_fields(
    outputs: Mapping[str, Tensor],
    names: tuple[str, ...],
    n_cells: int,
    spread: bool,
    means: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Ensemble mean of each requested field as a read-only (cell,) float64 array and, with
    ``spread``, ``<name>_spread``: the ensemble standard deviation (N-1 denominator; 0 for a
    single member). A backend that does not produce a requested field is FailedPrecondition.
    ``means``: those means already computed, bitwise these (a joined step's, computed once
    for its batch: ``coupler.core.batching.member_means``); the checks apply all the same."""
    reply: dict[str, np.ndarray] = {}
    spreads: dict[str, np.ndarray] = {}
    for name in names:
        t = outputs.get(name)
        if t is None:
            raise FailedPrecondition(
                f"outputs: the backend does not produce {name!r}",
                field="outputs",
                rule="backend_outputs",
            )
        if t.dim() != 2 or t.shape[1] != n_cells:
            raise FailedPrecondition(
                f"outputs: the backend returned {name!r} with shape {tuple(t.shape)}, expected "
                f"(member, {n_cells})",
                field="outputs",
                rule="backend_outputs",
            )
        given = None if means is None else means.get(name)
        if given is not None and given.shape == (n_cells,):
            reply[name] = given
        else:
            reply[name] = _frozen(t.to(torch.float64).mean(dim=0))
        if spread:
            t = t.to(torch.float64)
            std = t.std(dim=0, correction=1) if t.shape[0] > 1 else torch.zeros_like(t[0])
            spreads[f"{name}_spread"] = _frozen(std)
    reply.update(spreads)
    return reply


def energy_residual(outputs: Mapping[str, Tensor]) -> float:
    """max |rns − hfls − hfss − hfdsl| over members and cells [W m-2]; NaN if a term is missing."""
    try:
        rns, hfls, hfss, hfdsl = (outputs[k] for k in ("rns", "hfls", "hfss", "hfdsl"))
    except KeyError:
        return math.nan
    return float((rns - hfls - hfss - hfdsl).abs().max())


def water_residual(
    storage_before: Tensor | None, outputs: Mapping[str, Tensor], pr: Tensor | None, dt: float
) -> float:
    """max |(mrso' − mrso) − (pr − evspsbl − mrro)·dt| over members and cells [kg m-2], with
    ``storage_before`` the previous step's ``mrso``; NaN when a term is unavailable (first step
    of a session, or a backend without these fields)."""
    if storage_before is None or pr is None:
        return math.nan
    try:
        after, evap, runoff = (outputs[k] for k in ("mrso", "evspsbl", "mrro"))
    except KeyError:
        return math.nan
    return float(((after - storage_before) - (pr - evap - runoff) * dt).abs().max())


@dataclass(frozen=True)
class CoverChange:
    """What a land-cover change did: cells whose fractions changed; per cell (ensemble mean)
    what left the cell, ``released_water`` [kg m-2], ``released_heat`` [J m-2] and
    ``released_carbon`` [kg C m-2]; and the conservation residuals, max over members and cells
    of |Σ f' x' + released − Σ f x|, in the same units (``emulators.landstep.cover``)."""

    cells_changed: int
    released: dict[str, np.ndarray]
    residual_water: float
    residual_energy: float
    residual_carbon: float

    @staticmethod
    def of(out: Remapped, old: Tensor, new: Tensor) -> CoverChange:
        released = {
            f"released_{k}": _frozen(out.released[k].mean(dim=0))
            for k in ("water", "heat", "carbon")
        }
        return CoverChange(
            cells_changed=int((old != new).any(-1).sum()),
            released=released,
            residual_water=float(out.residual["water"].max()),
            residual_energy=float(out.residual["heat"].max()),
            residual_carbon=float(out.residual["carbon"].max()),
        )
