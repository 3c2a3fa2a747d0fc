"""Trajectories as row-stacked tensors, and closed-loop rollouts of a flux emulator over them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from emulators import landstep
from emulators.compiled import flux_step, open_water
from emulators.compiled.features import step_local_hour
from emulators.reference.soil import SoilConfig
from emulators.training.data import Trajectory
from emulators.variables import REQUIRED_FORCING

Tensor = torch.Tensor
log = logging.getLogger(__name__)


def _doy_sod(time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = time.astype("datetime64[s]")
    day = t.astype("datetime64[D]")
    doy = (day - day.astype("datetime64[Y]")).astype(np.int64) + 1
    sod = (t - day).astype(np.int64)
    return doy.astype(np.float64), sod.astype(np.float64)


@dataclass
class Batch:
    """Several trajectories of equal length stacked along rows. Time-major tensors (T, R)."""

    forcing: dict[str, Tensor]
    state: dict[str, Tensor]
    outputs: dict[str, Tensor]
    params: Tensor
    tile: Tensor
    lon: Tensor
    doy: Tensor  # (T, R)
    sod: Tensor  # (T, R) seconds of day (UTC)
    const: dict[str, Tensor]
    dt: float
    labels: tuple[str, ...]
    row_source: Tensor  # (R,) index into labels
    #: (R, 2) the (wind, temperature) measurement heights [m] each row's reference ran at
    heights: Tensor | None = None
    #: whether the rows' inputs carry the heights (a network with the height features)
    height_features: bool = False

    @property
    def steps(self) -> int:
        return int(self.doy.shape[0])

    @property
    def rows(self) -> int:
        return int(self.params.shape[0])

    @staticmethod
    def of(
        trajs: Sequence[Trajectory],
        dtype: torch.dtype = torch.float32,
        soil: SoilConfig | None = None,
    ) -> Batch:
        if not trajs:
            raise ValueError("Batch.of: no trajectories")
        kept = []
        for traj in trajs:
            clean, dropped = traj.physical()
            if dropped:
                log.warning(
                    "%s: %d of %d rows dropped (reference state left the valid range)",
                    traj.label,
                    dropped,
                    traj.rows,
                )
            kept.append(clean)
        trajs = kept
        steps = min(t.steps for t in trajs)
        dts = {t.dt for t in trajs}
        if len(dts) != 1:
            raise ValueError(f"Batch.of: trajectories have different timesteps {sorted(dts)}")

        def cat(get: object) -> Tensor:
            arrs = [get(t) for t in trajs]  # type: ignore[operator]
            return torch.as_tensor(np.concatenate(arrs, axis=1 if arrs[0].ndim > 1 else 0))

        forcing = {k: cat(lambda t, k=k: t.forcing[k][:steps]).to(dtype) for k in REQUIRED_FORCING}
        state = {k: cat(lambda t, k=k: t.state[k][:steps]).to(dtype) for k in trajs[0].state}
        outputs = {k: cat(lambda t, k=k: t.outputs[k][:steps]).to(dtype) for k in trajs[0].outputs}
        doy_sod = [_doy_sod(t.time[:steps]) for t in trajs]
        doy = torch.as_tensor(
            np.concatenate(
                [
                    np.repeat(d[:, None], t.rows, 1)
                    for (d, _), t in zip(doy_sod, trajs, strict=True)
                ],
                1,
            )
        )
        sod = torch.as_tensor(
            np.concatenate(
                [
                    np.repeat(s[:, None], t.rows, 1)
                    for (_, s), t in zip(doy_sod, trajs, strict=True)
                ],
                1,
            )
        )
        tile = torch.as_tensor(np.concatenate([t.tile for t in trajs])).long()
        table = landstep.class_constants(soil or SoilConfig(), dtype)
        return Batch(
            forcing=forcing,
            state=state,
            outputs=outputs,
            params=torch.as_tensor(np.concatenate([t.params for t in trajs])).to(dtype),
            tile=tile,
            lon=torch.as_tensor(np.concatenate([t.lon for t in trajs])).to(dtype),
            doy=doy.to(dtype),
            sod=sod.to(dtype),
            const={k: v[tile] for k, v in table.items()},
            dt=trajs[0].dt,
            labels=tuple(t.label for t in trajs),
            row_source=torch.as_tensor(
                np.concatenate([np.full(t.rows, i) for i, t in enumerate(trajs)])
            ),
            heights=None
            if any(t.heights is None for t in trajs)
            else torch.as_tensor(
                np.concatenate([np.tile(np.array(t.heights), (t.rows, 1)) for t in trajs])
            ).to(dtype),
        )

    def row_inputs(
        self, t: Tensor, w: Tensor, ts_prev: Tensor, tsoil: Tensor, cleaf: Tensor | None = None
    ) -> flux_step.RowInputs:
        """Inputs at per-row time indices ``t`` (R,) with the given physical state (``cleaf``
        defaults to the reference's)."""
        r = torch.arange(self.rows)
        return flux_step.RowInputs(
            forcing={k: v[t, r] for k, v in self.forcing.items()},
            w=w,
            ts_prev=ts_prev,
            tsoil=tsoil,
            cleaf=self.state["cleaf"][t, r] if cleaf is None else cleaf,
            params=self.params,
            tile=self.tile,
            const=self.const,
            doy=self.doy[t, r],
            local_hour=step_local_hour(self.sod[t, r], self.lon, self.dt),
            heights=self.row_heights(),
        )

    def row_heights(self) -> Tensor | None:
        """(R, 2) heights for the inputs of a network with height features, else None."""
        if not self.height_features:
            return None
        if self.heights is None:
            raise ValueError("heights: the batch's trajectories do not say their heights")
        return self.heights


def for_net(batch: Batch, net: object) -> Batch:
    """``batch`` with its rows' inputs carrying the heights iff ``net`` takes them
    (``flux_step.takes_heights``)."""
    wanted = flux_step.takes_heights(net)
    return batch if batch.height_features == wanted else replace(batch, height_features=wanted)


@torch.no_grad()
def rollout(
    net: flux_step.RecurrentNet,
    batch: Batch,
    hidden: int,
    soil: SoilConfig | None = None,
    fields: Sequence[str] = ("hfls", "hfss", "ts", "gpp", "evspsbl", "tran", "hfdsl"),
    c_width: int | None = None,
    water: open_water.OpenWater | None = None,
    spin_up: int = 0,
) -> dict[str, Tensor]:
    """Free-running (closed-loop) emulation of the whole batch from the reference state at step 0,
    LAI from the reference (the flux emulator's own skill). Returns (T, R) fields. ``water``:
    the water rows from physics, as the emulator backends serve them (``open_water``);
    ``spin_up``: the recurrent state (zero at step 0) spun up first, as the backends do
    (``flux_step.spin_up_state``)."""
    soil = soil or SoilConfig()
    batch = for_net(batch, net)
    t0 = torch.zeros(batch.rows, dtype=torch.long)
    w = batch.state["w"][0].clone()
    ts = batch.state["ts"][0].clone()
    tsoil = batch.state["tsoil"][0].clone()
    h = torch.zeros(batch.rows, hidden)
    c = torch.zeros(batch.rows, hidden if c_width is None else c_width)
    out = {k: torch.empty(batch.steps, batch.rows, dtype=w.dtype) for k in fields}
    for i in range(batch.steps):
        inp = batch.row_inputs(t0 + i, w, ts, tsoil)
        closed, _, h, c = flux_step.step(
            net, inp, h, c, soil, batch.dt, water=water, spin_up=spin_up
        )
        for k in fields:
            out[k][i] = closed.fields[k]
        w, ts, tsoil = closed.w, closed.ts, closed.tsoil
    return out
