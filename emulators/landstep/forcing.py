"""The forcing check of the land step: every required forcing field present, finite and inside
its valid range (``emulators.variables.check``), done once per step.

A backend checks the forcing it is given (``VariableError`` naming the variable and the rule for a
bad value, ``ValueError`` for a missing field), unless the caller hands it
:class:`CheckedForcing`: forcing that has already passed the same registry check. The coupler's
session does that: it checks what the wire needs (names, units, dtype, shape, then the same
``variables.check`` for finite and range, raising InvalidArgument(field, rule)) and passes the
checked fields on as ``CheckedForcing``, so on the service path the forcing is checked once.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from emulators.variables import REQUIRED_FORCING, check

Tensor = torch.Tensor


class CheckedForcing(dict[str, Tensor]):
    """Forcing fields ((member, cell) tensors) that have passed the registry check (as
    :func:`check_forcing` does), so a backend's check phase skips them. Any transformed copy
    (``dict(forcing)``, perturbed member forcing) is a plain dict again and is checked."""


def check_forcing(forcing: Mapping[str, Tensor]) -> None:
    """Check one step's forcing: each required field present (``ValueError`` naming it), then
    finite and inside its valid range (``VariableError`` naming the variable and the rule).
    ``CheckedForcing`` is not checked again."""
    if isinstance(forcing, CheckedForcing):
        return
    for name in REQUIRED_FORCING:
        if name not in forcing:
            raise ValueError(f"forcing field {name!r} is missing")
        check(name, forcing[name])
