"""The frozen flux emulator as a differentiable function of the 12 parameters.

``Surrogate(sites)`` holds a daily flux emulator (by default ``flux-lstm-daily`` as shipped from
2026-11-23 to 2026-12-07, :data:`DEFAULT_ARTIFACT`; the TorchScript module loaded in float32,
weights with ``requires_grad=False``) and a site batch; ``rollout(params)``
runs it closed-loop from the parameter-independent initial state over the spin-up and the year
(the reference's protocol, ``emulators.calibration.sites``) through the constraint layer, and
returns daily LE and H of the year with gradients to ``params`` only. Leaf carbon is the
observed-LAI driver (the reference's, as MODIS LAI drives the MdPL generator's surrogate).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from emulators import landstep
from emulators import parameters as P
from emulators.calibration.sites import TIMESTEP, Sites
from emulators.compiled import flux_step
from emulators.manifest import Manifest
from emulators.protocol import LandStatic
from emulators.reference.soil import SoilConfig

Tensor = torch.Tensor
#: the network the twin's documented figures come from (docs/calibration.md): ``flux-lstm-daily``
#: of 2026-11-23 (H = 32), pinned when the served one was retrained on widened weather
#: (2026-12-07), so that ``landcoupler calibrate`` keeps reproducing them; its manifest there names
#: only the TorchScript file (sha256-checked on load)
DEFAULT_ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "flux_lstm_daily" / "init"
DTYPE = torch.float32


def load_frozen(directory: Path = DEFAULT_ARTIFACT) -> tuple[torch.nn.Module, int, int]:
    """(the flux emulator's TorchScript module with frozen weights, hidden, c width)."""
    from emulators import export

    manifest = Manifest.load(directory)
    if float(manifest.timestep_seconds) != TIMESTEP:
        raise ValueError(
            f"{directory}: a {manifest.timestep_seconds} s emulator; calibration needs {TIMESTEP} s"
        )
    net = export.load_torchscript(manifest.artifact_path(directory, "torchscript"), "cpu")
    for p in net.parameters():
        p.requires_grad_(False)
    rec = manifest.recurrent_state
    return net, int(rec["hidden"]), int(rec["c_width"])


class Surrogate:
    """A differentiable closed-loop rollout of the frozen flux emulator over ``sites``."""

    def __init__(self, sites: Sites, directory: Path = DEFAULT_ARTIFACT) -> None:
        self.net, self.hidden, self.c_width = load_frozen(directory)
        self.soil = SoilConfig()
        n = sites.n
        self.n = n
        self.spinup = sites.spinup
        self.tile = torch.as_tensor(sites.tile, dtype=torch.long)
        table = landstep.class_constants(self.soil, DTYPE)
        self.const = {k: v[self.tile] for k, v in table.items()}
        self.forcing = {k: torch.as_tensor(v, dtype=DTYPE) for k, v in sites.forcing.items()}
        self.cleaf = torch.as_tensor(sites.cleaf, dtype=DTYPE)
        t = sites.time.astype("datetime64[D]")
        self.doy = torch.as_tensor(
            ((t - t.astype("datetime64[Y]")).astype(np.int64) + 1).astype(np.float32)
        )
        static = LandStatic(
            torch.as_tensor(sites.lat, dtype=torch.float64),
            torch.as_tensor(sites.lon, dtype=torch.float64),
            torch.nn.functional.one_hot(self.tile, P.N_CLASSES).double(),
            P.default_table()[self.tile].unsqueeze(1).expand(n, P.N_CLASSES, -1).unsqueeze(0),
        )
        init = landstep.initial_state(static, landstep.class_constants(self.soil))
        rows = torch.arange(n)
        self.w0 = init.tensors["w"][0, rows, self.tile].to(DTYPE)
        self.ts0 = init.tensors["ts"][0, rows, self.tile].to(DTYPE)
        self.tsoil0 = init.tensors["tsoil"][0, rows, self.tile].to(DTYPE)

    @property
    def steps(self) -> int:
        return int(self.doy.shape[0])

    def rollout(self, params: Tensor) -> dict[str, Tensor]:
        """(T_year, site) daily ``hfls`` and ``hfss`` [W m-2] for ``params`` (site, 12)."""
        if params.shape != (self.n, P.N_PARAMETERS):
            raise ValueError(f"params: shape {tuple(params.shape)}, expected ({self.n}, 12)")
        params = params.to(DTYPE)
        w, ts, tsoil = self.w0, self.ts0, self.tsoil0
        h = torch.zeros(self.n, self.hidden, dtype=DTYPE)
        c = torch.zeros(self.n, self.c_width, dtype=DTYPE)
        le: list[Tensor] = []
        hs: list[Tensor] = []
        for i in range(self.steps):
            inp = flux_step.RowInputs(
                forcing={k: v[i] for k, v in self.forcing.items()},
                w=w,
                ts_prev=ts,
                tsoil=tsoil,
                cleaf=self.cleaf[i],
                params=params,
                tile=self.tile,
                const=self.const,
                doy=self.doy[i].expand(self.n),
                local_hour=None,
            )
            closed, _, h, c = flux_step.step(self.net, inp, h, c, self.soil, float(TIMESTEP))
            w, ts, tsoil = closed.w, closed.ts, closed.tsoil
            if i >= self.spinup:
                le.append(closed.fields["hfls"])
                hs.append(closed.fields["hfss"])
        return {"hfls": torch.stack(le), "hfss": torch.stack(hs)}
