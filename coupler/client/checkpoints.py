"""What a client can read back from a session checkpoint it asked for (``Session.checkpoint``).

A checkpoint is a file at a URL the client chose (local path or any fsspec URL it can reach),
so a client process reads it without a round trip to the server. Only the parameters are
exposed here: an assimilating session's per-member land-model parameters — drawn from the
priors of its ``assimilation`` options and, with ``estimate_parameters``, updated by every
analysis (state augmentation) — are not among the step outputs.
"""

from __future__ import annotations

import numpy as np

from coupler.errors import InvalidArgument


def session_parameters(url: str) -> np.ndarray:
    """The (member, cell, class, 12) parameters (``emulators.landcover.PARAMETER_NAMES`` order,
    physical units, float64) of the assimilating session whose checkpoint is at ``url``.

    Raises NotFound / FailedPrecondition (field ``resume_from``) when there is no readable
    checkpoint at ``url``, InvalidArgument(field="checkpoint", rule="assimilation") when the
    session had no assimilation (its parameters are then the class defaults or the map of its
    ``parameters_url``, both known to the client)."""
    from coupler.core import checkpoint  # the checkpoint format (torch); not at import time

    data = checkpoint.load(url)
    if data.assimilation is None or "params" not in data.assimilation:
        raise InvalidArgument(
            f"checkpoint: {url!r} is of a session without assimilation (no member parameters)",
            field="checkpoint",
            rule="assimilation",
        )
    return np.asarray(data.assimilation["params"].detach().cpu().numpy(), dtype=np.float64)
