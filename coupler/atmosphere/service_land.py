"""The land surface behind the landcoupler service, reached only through the client API.

``ServiceLand`` opens one session per subdomain ("rank", as an MPI atmosphere would) on a
``CouplerClient`` (gRPC) or an ``InProcessClient`` (same interface), tied by one run id, and
every step sends each rank its slice of the forcing and gathers the replies into (land cell,)
arrays. Ocean cells are never sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coupler.atmosphere.grid import CellGrid
from coupler.atmosphere.scenario import as_seconds
from coupler.atmosphere.surface import LAND_FLUXES
from coupler.client import Client, LandCoverUpdate, Session
from coupler.spec import RecordOptions

#: Land diagnostics requested besides the fluxes (maps of ΔLAI and the regional table).
LAND_DIAGNOSTICS: tuple[str, ...] = ("lai", "gpp", "mrso", "tran")


@dataclass(frozen=True)
class SessionOptions:
    """What every rank's session is opened with. record_url: a prefix; rank r records to
    ``<prefix>/rank<r>.zarr`` (None = no record), written as ``record_options`` says (None:
    the service's defaults). freeze_vegetation_year: frozen land (the session option; None =
    dynamic vegetation). assimilation: the sessions' assimilation options (None: none);
    observations: per rank, the URL of its observation file (None: no file for that rank).
    forcing_dtype: the dtype the forcing is sent in (float32 rounds the atmosphere's float64
    values to nearest: relative error <= 2**-24)."""

    start: np.datetime64
    timestep: int
    backend: str = "reference"
    members: int = 1
    run_id: str = ""
    record_url: str | None = None
    outputs: tuple[str, ...] = LAND_FLUXES + LAND_DIAGNOSTICS
    freeze_vegetation_year: int | None = None
    record_options: RecordOptions | None = None
    assimilation: Mapping[str, Any] | None = None
    observations: tuple[str | None, ...] = ()
    forcing_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.forcing_dtype not in ("float32", "float64"):
            raise ValueError(f"forcing_dtype: float32 or float64, got {self.forcing_dtype!r}")
        if self.timestep <= 0:
            raise ValueError(f"timestep: must be > 0 s, got {self.timestep}")
        if self.members < 1:
            raise ValueError(f"members: must be >= 1, got {self.members}")


class ServiceLand:
    """Sessions for ``parts`` (indices into ``grid``, all land cells, from ``grid.split_land``)
    with (land cell, 8) land-cover fractions ``cover`` in the order of ``grid.land_index``."""

    def __init__(
        self,
        client: Client,
        grid: CellGrid,
        parts: Sequence[np.ndarray],
        cover: np.ndarray,
        options: SessionOptions,
    ) -> None:
        land = grid.land_index
        position = {int(c): k for k, c in enumerate(land)}
        if cover.shape != (land.size, 8):
            raise ValueError(f"cover: shape {cover.shape}, expected ({land.size}, 8)")
        covered = np.sort(np.concatenate([np.asarray(p) for p in parts]))
        if not np.array_equal(covered, land):
            raise ValueError("parts: the ranks must hold every land cell exactly once")
        self.positions = [np.array([position[int(c)] for c in part]) for part in parts]
        self.n_land = land.size
        self.outputs = options.outputs
        self.forcing_dtype = np.dtype(options.forcing_dtype)
        self.sessions: list[Session] = []
        start = str(as_seconds(options.start)).replace(" ", "T")
        try:
            for rank, (part, pos) in enumerate(zip(parts, self.positions, strict=True)):
                da: dict[str, Any] | None = None
                if options.assimilation is not None:
                    da = dict(options.assimilation)
                    url = options.observations[rank] if options.observations else None
                    if url is not None:
                        da["observations_url"] = url
                record = (
                    f"{options.record_url.rstrip('/')}/rank{rank}.zarr"
                    if options.record_url
                    else None
                )
                self.sessions.append(
                    client.open_session(
                        lat=grid.lat[part], lon=grid.lon[part], area=grid.area[part],
                        land_fraction=grid.land_fraction[part], start=start,
                        timestep=int(options.timestep), outputs=list(options.outputs),
                        backend=options.backend, land_cover=np.ascontiguousarray(cover[pos]),
                        members=options.members, run_id=options.run_id, rank=rank,
                        record_url=record, freeze_vegetation_year=options.freeze_vegetation_year,
                        record_options=options.record_options, assimilation=da,
                    )
                )  # fmt: skip
        except Exception:
            self.close()
            raise

    def exchange(self, index: int, forcing: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {name: np.empty(self.n_land) for name in self.outputs}
        sent = {k: np.asarray(v).astype(self.forcing_dtype, copy=False) for k, v in forcing.items()}
        for session, pos in zip(self.sessions, self.positions, strict=True):
            reply = session.step(index, {k: v[pos] for k, v in sent.items()})
            for name in self.outputs:
                out[name][pos] = reply[name]
        return out

    def update_cover(self, index: int, cover: np.ndarray) -> list[LandCoverUpdate]:
        """New (land cell, 8) land cover from step ``index`` on, sent to every rank's session
        (``update_land_cover``); their answers (residuals, released amounts) in rank order."""
        if cover.shape != (self.n_land, 8):
            raise ValueError(f"cover: shape {cover.shape}, expected ({self.n_land}, 8)")
        return [
            session.update_land_cover(index, np.ascontiguousarray(cover[pos]))
            for session, pos in zip(self.sessions, self.positions, strict=True)
        ]

    def close(self) -> None:
        """Close every session (flushes the records)."""
        sessions, self.sessions = self.sessions, []
        for s in sessions:
            s.close()
