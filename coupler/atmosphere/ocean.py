"""The slab ocean's prescribed heat transport (the "q-flux", Hansen et al. 1984, JGR 89; as in
the slab-ocean configurations of CESM, Bitz et al. 2012, J. Clim. 25, 3053): diagnosed while SST
is held at its climatology as Q = C_o dSST_clim/dt − F_s, by day of year, and used afterwards so
that the control climate keeps its SST climatology while anomalies evolve freely."""

from __future__ import annotations

import numpy as np

from emulators.constants import DAYS_PER_LEAP_YEAR as DAYS


class QFlux:
    """The slab ocean's prescribed heat-transport convergence Q [W m-2 of ocean] by day of year:
    diagnosed while SST is held at climatology (Q = C_o dSST_clim/dt − F_s), used afterwards."""

    def __init__(self, n_cells: int) -> None:
        self.sums = np.zeros((DAYS, n_cells))
        self.counts = np.zeros(DAYS)

    def add(self, day_index: int, q: np.ndarray) -> None:
        self.sums[day_index] += q
        self.counts[day_index] += 1

    def table(self) -> np.ndarray:
        """(366, cell) daily means; days never diagnosed (29 Feb in a common year) take the mean
        of their neighbours."""
        if not self.counts.any():
            raise ValueError("qflux: nothing was diagnosed (hold SST for at least one day)")
        out = np.zeros_like(self.sums)
        seen = self.counts > 0
        out[seen] = self.sums[seen] / self.counts[seen, None]
        days = np.arange(DAYS)
        for i in np.flatnonzero(~seen):
            lo = days[seen][np.argmin((i - days[seen]) % DAYS)]
            hi = days[seen][np.argmin((days[seen] - i) % DAYS)]
            out[i] = 0.5 * (out[lo] + out[hi])
        return out


__all__ = ["DAYS", "QFlux"]
