"""A land backend for drain tests: the reference model, whose steps can be held at a gate.

In a ``landcoupler serve`` process started with ``LANDCOUPLER_TEST_GATE=DIR`` (after
:func:`install`), a step that starts while ``DIR/hold`` exists writes ``DIR/entered-<id>`` and
waits until ``hold`` is removed (at most 120 s), so a test knows steps are in flight and decides
when they finish. Otherwise it is the reference model, bit for bit (same class, same code)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import torch

from coupler.core import registry
from emulators.protocol import LandState, LandStatic, StepClock
from emulators.reference import ReferenceBackend

GATE_ENV = "LANDCOUPLER_TEST_GATE"
NAME = "gated"
#: ``python -c`` program: a ``landcoupler`` CLI that knows the gated backend
LAUNCH = (
    "import sys; from tests.coupler.wire.gated import install; install(); "
    "from coupler.cli import main; sys.exit(main())"
)


class GatedBackend(ReferenceBackend):
    name = NAME

    def step(
        self,
        state: LandState,
        static: LandStatic,
        forcing: Mapping[str, torch.Tensor],
        clock: StepClock,
    ) -> tuple[LandState, dict[str, torch.Tensor]]:
        gate = os.environ.get(GATE_ENV)
        if gate and (Path(gate) / "hold").exists():
            (Path(gate) / f"entered-{uuid.uuid4().hex}").touch()
            deadline = time.monotonic() + 120.0
            while (Path(gate) / "hold").exists():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{gate}/hold was not removed within 120 s")
                time.sleep(0.01)
        return super().step(state, static, forcing, clock)


def install() -> None:
    """Register the backend (in the server process only)."""
    registry.register(NAME, GatedBackend)
