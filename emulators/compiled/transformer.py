"""``transformer``: the emulator backend with the ``flux-transformer`` (Trans-LAI) flux emulator
in place of ``flux-lstm``, for comparison (issue 14, item 2; its held-out skill is below the
LSTM's: docs/emulators.md).

Everything but the flux network is the TorchScript emulator backend's (``emulator``): features,
constraint layer, LAI emulators, state. The transformer is exported behind the recurrent calling
convention (``nets.flux.FluxTransformerStep``): its "hidden state" ``lstm_h`` (…, 966) is the
window of the last 23 normalised feature vectors, zeros at the start (the training mean), and
``lstm_c`` (…, 1) is unused. It is trained for hourly steps only, so a session at any other
``dt`` is refused (``TimestepError``: field ``dt``, rule ``trained_timestep``).
"""

from __future__ import annotations

import dataclasses

from emulators.compiled.emulator import EmulatorBackend, EmulatorConfig

#: the artifact directory of the flux network this backend serves
TRANSFORMER_FLUX = ("flux_transformer",)


class TransformerBackend(EmulatorBackend):
    """The TorchScript emulator backend serving ``flux-transformer`` (module docstring). A given
    ``config`` is used with its ``flux`` replaced by :data:`TRANSFORMER_FLUX`."""

    def __init__(self, config: EmulatorConfig | None = None, loader: str = "torchscript") -> None:
        cfg = dataclasses.replace(config or EmulatorConfig(), flux=TRANSFORMER_FLUX)
        super().__init__(cfg, loader=loader)
        self.name = "transformer"
