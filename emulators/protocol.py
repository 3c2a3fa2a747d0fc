"""The land-backend Protocol: the seam that the reference model, in-process compiled emulators
and Triton all implement (structurally; none needs to import this module).

Tensors are float64, shaped (member, cell) unless stated. A backend is stateless across sessions:
the session owns the ``LandState`` and passes it in and out explicitly, so the same backend serves
many sessions, checkpoints are just the state dict, and recurrent emulators carry their hidden
state inside ``LandState.tensors``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from emulators import parameters as P


@dataclass(frozen=True)
class StepClock:
    """Where a step sits in time. ``time`` is the start of the step (UTC)."""

    index: int
    time: np.datetime64
    dt: float  # s

    @property
    def day_of_year(self) -> int:
        day = self.time.astype("datetime64[D]")
        return int((day - day.astype("datetime64[Y]")).astype(int)) + 1

    @property
    def seconds_of_day(self) -> float:
        t = self.time.astype("datetime64[s]")
        return float((t - t.astype("datetime64[D]")).astype(int))

    @property
    def year(self) -> int:
        return int(self.time.astype("datetime64[Y]").astype(int)) + 1970

    def advance(self) -> StepClock:
        return StepClock(self.index + 1, self.time + np.timedelta64(int(self.dt), "s"), self.dt)


@dataclass(frozen=True)
class LandStatic:
    """Per-cell constants of a domain.

    lat, lon: (cell,) degrees. cover: (cell, class) land-cover fractions of the land part, rows
    sum to 1. params: (member, cell, class, 12) MdPL parameters (see ``emulators.parameters``).
    """

    lat: torch.Tensor
    lon: torch.Tensor
    cover: torch.Tensor
    params: torch.Tensor

    def __post_init__(self) -> None:
        n = self.lat.shape[0]
        if self.lon.shape != (n,):
            raise ValueError(f"lon: shape {tuple(self.lon.shape)}, expected ({n},)")
        if self.cover.shape != (n, P.N_CLASSES):
            raise ValueError(
                f"cover: shape {tuple(self.cover.shape)}, expected ({n}, {P.N_CLASSES})"
            )
        if (self.cover < 0).any() or not torch.allclose(
            self.cover.sum(-1), torch.ones(n, dtype=self.cover.dtype), atol=1e-6
        ):
            raise ValueError("cover: land-cover fractions must be >= 0 and sum to 1 per cell")
        if self.params.dim() != 4 or self.params.shape[1:] != (n, P.N_CLASSES, P.N_PARAMETERS):
            raise ValueError(
                f"params: shape {tuple(self.params.shape)}, expected (member, {n}, "
                f"{P.N_CLASSES}, {P.N_PARAMETERS})"
            )
        P.check_parameters(self.params)

    @property
    def n_cells(self) -> int:
        return int(self.lat.shape[0])

    @property
    def n_members(self) -> int:
        return int(self.params.shape[0])

    def cells(self, cells: slice) -> LandStatic:
        """The static fields of a slice of the cells (views, not copies). A slice of checked
        fields needs no new check, so ``__post_init__`` is skipped."""
        part = object.__new__(LandStatic)
        for name, value in (
            ("lat", self.lat[cells]),
            ("lon", self.lon[cells]),
            ("cover", self.cover[cells]),
            ("params", self.params[:, cells]),
        ):
            object.__setattr__(part, name, value)
        return part

    @staticmethod
    def join(parts: Sequence[LandStatic]) -> LandStatic:
        """The static fields of several domains joined on the cell axis, in order (copies).
        Joined checked fields need no new check, so ``__post_init__`` is skipped; the parts must
        have the same members (``params`` is joined on its cell axis, 1)."""
        whole = object.__new__(LandStatic)
        for name, axis in (("lat", 0), ("lon", 0), ("cover", 0), ("params", 1)):
            object.__setattr__(whole, name, torch.cat([getattr(p, name) for p in parts], axis))
        return whole

    @staticmethod
    def from_cover(
        lat: torch.Tensor, lon: torch.Tensor, cover: torch.Tensor, members: int = 1
    ) -> LandStatic:
        """Static fields with the default parameters of each class, identical for all members."""
        table = P.default_table(torch.float64)
        params = table.expand(members, lat.shape[0], P.N_CLASSES, P.N_PARAMETERS).clone()
        return LandStatic(lat.double(), lon.double(), cover.double(), params)


@dataclass
class LandState:
    """Prognostic state: named tensors with leading dims (member, cell). Opaque to the coupler
    except for ``clone``/``state_dict`` (checkpoints) and the named diagnostics the DA updates."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    def clone(self) -> LandState:
        return LandState({k: v.clone() for k, v in self.tensors.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.tensors)

    def equal(self, other: LandState) -> bool:
        return self.tensors.keys() == other.tensors.keys() and all(
            torch.equal(v, other.tensors[k]) for k, v in self.tensors.items()
        )


@runtime_checkable
class LandBackend(Protocol):
    """What every land backend implements."""

    name: str

    def initial_state(self, static: LandStatic, clock: StepClock) -> LandState:
        """A spun-up-enough initial state for ``static`` at ``clock``."""
        ...

    def step(
        self,
        state: LandState,
        static: LandStatic,
        forcing: Mapping[str, torch.Tensor],
        clock: StepClock,
    ) -> tuple[LandState, dict[str, torch.Tensor]]:
        """Advance one step of ``clock.dt`` seconds. ``forcing`` holds the registry's TO_LAND
        fields as (member, cell) float64 tensors; returns the new state (the input is not
        modified) and every TO_ATMOSPHERE and DIAGNOSTIC field as (member, cell) tensors, with
        energy and water closed by ``emulators.constraints``."""
        ...


@runtime_checkable
class BatchableBackend(Protocol):
    """A backend whose step may be computed for several domains at once (the service's
    micro-batching, ``coupler.core.batching``): steps whose clocks have equal, non-None
    ``batch_key`` may be computed as one step of the domains joined on the cell axis (states,
    static fields and forcing concatenated in order, every domain a multiple of
    ``batch_cells`` cells, the same members), and each domain's slice of the joined result is
    *bitwise* its own step. A backend promises this only where it has been proven."""

    batch_cells: int

    def batch_key(self, clock: StepClock) -> Hashable | None:
        """All that the step takes from ``clock`` (None: never batch this step)."""
        ...


@runtime_checkable
class HeightAwareBackend(Protocol):
    """A backend that knows the heights its forcing is measured at (CLM's ``forc_hgt``). A
    backend without this method serves only ``emulators.constants.DEFAULT_HEIGHT_WIND``
    / ``DEFAULT_HEIGHT_TEMPERATURE``."""

    def at_heights(self, wind: float, temperature: float) -> LandBackend:
        """This backend for forcing with wind at ``wind`` and temperature and humidity at
        ``temperature`` metres above the zero-plane displacement: a backend sharing what does not
        depend on them (``self`` where they are its own). Raises ValueError naming
        ``height_wind`` or ``height_temperature`` and the heights it serves where it cannot."""
        ...
