"""Replay as a land backend: :class:`RecordBackend` serves a record through the same
``LandBackend`` Protocol the reference model and the emulators implement, so a new emulator can be
developed against a fixed scenario: step both with the recorded forcing and compare, or open a
session on it (``registry.register("record", lambda: RecordBackend(url))``) and the service
replies with the recorded outputs, over gRPC too.

``initial_state`` is the state stored in the record (the session's start checkpoint at or before
the clock's step), ``step`` returns the recorded outputs of ``clock.index`` as (member, cell)
float64 tensors (the record holds the ensemble mean, so every member gets it) and passes the
state through unchanged (the record stores no per-step state). Forcing is first checked like
every backend checks it (``emulators.landstep.check_forcing``: a missing field, a value outside
its range), then, with ``check_forcing``, it must be the recorded one bit for bit, else
ValueError naming the field (``rule`` ``record_forcing``): a driver that strays from the scenario
is told where. Only the outputs the session recorded exist. It passes the backend contract
(``tests/contracts/test_backends.py``, ``TestRecordBackend``) when fed the recorded forcing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from coupler.replay.source import Block, RecordSource
from emulators.landstep import check_forcing
from emulators.protocol import LandState, LandStatic, StepClock


class RecordBackendError(ValueError):
    """A backend refusal naming the field and rule (the session manager maps it)."""

    def __init__(self, message: str, field: str, rule: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


class RecordBackend:
    """The outputs of one rank's record as a land backend (see the module docstring)."""

    name = "record"

    def __init__(
        self,
        source: RecordSource | str,
        *,
        check_forcing: bool = True,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.source = source if isinstance(source, RecordSource) else RecordSource(
            source, storage_options
        )  # fmt: skip
        self.check_forcing = check_forcing
        self.version = f"record:{self.source.url}"
        self._block: Block | None = None

    def at_heights(self, wind: float, temperature: float) -> RecordBackend:
        """``HeightAwareBackend``: the record's own forcing heights only (its outputs were
        computed at them)."""
        spec = self.source.spec
        recorded = (spec.height_wind, spec.height_temperature)
        if (wind, temperature) != recorded:
            name = "height_wind" if wind != recorded[0] else "height_temperature"
            raise RecordBackendError(
                f"{name}: the record was computed at {recorded[0]:g} m (wind) / {recorded[1]:g} m "
                f"(temperature), got {wind:g} m / {temperature:g} m", name, "record_heights",
            )  # fmt: skip
        return self

    # ---- the Protocol ------------------------------------------------------------------------
    def initial_state(self, static: LandStatic, clock: StepClock) -> LandState:
        self._check_cells(static)
        data = self.source.checkpoint(self.source.start_for(clock.index))
        return LandState({k: v.clone() for k, v in data.state.items()})

    def step(
        self,
        state: LandState,
        static: LandStatic,
        forcing: Mapping[str, torch.Tensor],
        clock: StepClock,
    ) -> tuple[LandState, dict[str, torch.Tensor]]:
        self._check_cells(static)
        check_forcing(forcing)  # the Protocol's own check (skipped for a session's forcing)
        fields, row = self._row(clock.index)
        if self.check_forcing:
            self._check_forcing(forcing, fields, row, clock.index)
        members = static.n_members
        outputs = {
            name: torch.from_numpy(np.array(fields[name][row])).expand(members, -1)
            for name in self.source.outputs
        }
        return state, outputs

    # ---- helpers for a developer's own loop --------------------------------------------------
    def forcing(self, index: int, members: int = 1) -> dict[str, torch.Tensor]:
        """The recorded forcing of step ``index`` as (member, cell) float64 tensors (fields
        that were not sent, such as an absent ``co2``, are left out)."""
        fields, row = self._row(index)
        return {
            name: torch.from_numpy(np.array(fields[name][row], np.float64)).expand(members, -1)
            for name in self.source.forcing
            if not np.isnan(fields[name][row]).all()
        }

    def _row(self, index: int) -> tuple[Mapping[str, np.ndarray], int]:
        src = self.source
        if not 0 <= index < src.n_steps:
            raise RecordBackendError(
                f"clock: step {index} is outside the record's 0..{src.n_steps - 1}",
                "clock", "record_steps",
            )  # fmt: skip
        block = self._block
        if block is None or not block.start <= index < block.stop:
            start = index - index % src.chunk_steps
            block = self._block = src.read(start, start + src.chunk_steps)
        return block.fields, index - block.start

    def _check_cells(self, static: LandStatic) -> None:
        if static.n_cells != self.source.n_cells:
            raise RecordBackendError(
                f"static: {static.n_cells} cells, the record has {self.source.n_cells}",
                "static", "record_cells",
            )  # fmt: skip

    def _check_forcing(
        self, forcing: Mapping[str, torch.Tensor], fields: Mapping[str, np.ndarray], row: int,
        index: int,
    ) -> None:  # fmt: skip
        for name in self.source.forcing:
            recorded = np.asarray(fields[name][row], np.float64)  # float32 widened exactly
            sent = forcing.get(name)
            if sent is None:
                if np.isnan(recorded).all():
                    continue
                raise RecordBackendError(
                    f"{name}: step {index} of the record has it; none was given",
                    name,
                    "record_forcing",
                )
            got = sent[0].detach().to(torch.float64).cpu().numpy()
            if got.view(np.uint64).tobytes() != recorded.view(np.uint64).tobytes():
                cell = int(np.argmax(got != recorded))
                raise RecordBackendError(
                    f"{name}: step {index} cell {cell} is {got[cell]!r}, the record has "
                    f"{recorded[cell]!r}", name, "record_forcing",
                )  # fmt: skip
