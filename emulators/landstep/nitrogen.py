"""The leaf nitrogen pool: ``nleaf`` [kg N m-2 of vegetated area] = ``cleaf`` / C:N of the
class (fixed stoichiometry, ``reference.classes.LEAF_CN``), as CLM-CN's leaf N with a fixed
``leafcn``. The pool is diagnostic of leaf carbon in the model step (phenology changes carbon,
nitrogen follows); it is state so that cover changes (``cover.remap``) and data assimilation
(``coupler.assimilation.landstate``) move it with carbon. Nothing else reads it, so the pool
changes no other output.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from emulators.reference.classes import leaf_cn

Tensor = torch.Tensor
NITROGEN = "nleaf"
CARBON = "cleaf"


def leaf_nitrogen(cleaf: Tensor) -> Tensor:
    """Leaf nitrogen [kg N m-2] of leaf carbon ``cleaf`` (…, tile) [kg C m-2]."""
    return cleaf / leaf_cn(cleaf.dtype)


def follow_carbon(tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``tensors`` with ``nleaf`` set from ``cleaf`` where the state has a nitrogen pool (state
    without one comes back unchanged, as a new dict)."""
    out = dict(tensors)
    if NITROGEN in out and CARBON in out:
        out[NITROGEN] = leaf_nitrogen(out[CARBON])
    return out


def with_nitrogen(tensors: Mapping[str, Tensor], fresh: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A stored state (``tensors``, e.g. a checkpoint written before the pool existed) given the
    pool the backend's ``fresh`` state has: ``nleaf`` derived from ``cleaf`` when missing."""
    out = dict(tensors)
    if NITROGEN in fresh and NITROGEN not in out and CARBON in out:
        out[NITROGEN] = leaf_nitrogen(out[CARBON])
    return out
