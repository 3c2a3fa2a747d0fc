"""The global two-layer energy-balance model (Held et al. 2010, J. Clim. 23, 2418; Geoffroy et
al. 2013, J. Clim. 26, 1841), used to start the column model's ocean on its historical path and
as the yardstick of its global response:

    C   dT/dt   = F − λ T − γ (T − T_d)
    C_d dT_d/dt = γ (T − T_d)

T, T_d: surface and deep-ocean temperature anomalies [K]; F: forcing [W m-2]; λ: climate
feedback parameter [W m-2 K-1] (ECS = F_2x / λ); γ: heat exchange [W m-2 K-1]; C, C_d: heat
capacities [J m-2 K-1] per unit of the Earth's surface. Integrated with monthly implicit-in-T
steps (unconditionally stable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emulators.constants import SECONDS_PER_JULIAN_YEAR as SECONDS_PER_YEAR

#: Geoffroy et al. (2013, Table 3) CMIP5 multi-model means, per unit of the Earth's surface
GEOFFROY_C = 7.3 * SECONDS_PER_YEAR  # J m-2 K-1 (7.3 W yr m-2 K-1)
GEOFFROY_C_DEEP = 106.0 * SECONDS_PER_YEAR
GEOFFROY_GAMMA = 0.73  # W m-2 K-1


@dataclass(frozen=True)
class TwoLayer:
    """Parameters (see module docstring)."""

    lam: float
    gamma: float = GEOFFROY_GAMMA
    heat_capacity: float = GEOFFROY_C
    deep_heat_capacity: float = GEOFFROY_C_DEEP

    def __post_init__(self) -> None:
        for name in ("lam", "heat_capacity", "deep_heat_capacity"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.gamma < 0:
            raise ValueError(f"gamma: must be >= 0, got {self.gamma}")

    def ecs(self, f2x: float) -> float:
        """Equilibrium warming [K] for a forcing of ``f2x`` W m-2."""
        return f2x / self.lam

    def tcr(self, f2x: float) -> float:
        """Transient climate response [K]: warming at year 70 of a 1 % yr-1 CO2 increase
        (forcing rising linearly to ``f2x`` at year 70)."""
        forcing = f2x * (np.arange(140) + 0.5) / 70.0
        t, _ = self.run(forcing)
        return float(t[60:80].mean())

    def run(
        self, forcing: np.ndarray, t0: float = 0.0, deep0: float = 0.0, substeps: int = 12
    ) -> tuple[np.ndarray, np.ndarray]:
        """Annual forcing [W m-2] (year i spans [i, i+1)) → annual-mean (T, T_d) [K]."""
        dt = SECONDS_PER_YEAR / substeps
        t, d = float(t0), float(deep0)
        out_t = np.empty(len(forcing))
        out_d = np.empty(len(forcing))
        for i, f in enumerate(np.asarray(forcing, dtype=np.float64)):
            acc_t = acc_d = 0.0
            for _ in range(substeps):
                # implicit in T (stiff for small C), explicit coupling to the deep layer
                t = (t + dt / self.heat_capacity * (f + self.gamma * d)) / (
                    1.0 + dt / self.heat_capacity * (self.lam + self.gamma)
                )
                d = d + dt * self.gamma * (t - d) / self.deep_heat_capacity
                acc_t += t
                acc_d += d
            out_t[i], out_d[i] = acc_t / substeps, acc_d / substeps
        return out_t, out_d

    def state_at_end(self, forcing: np.ndarray, substeps: int = 12) -> tuple[float, float]:
        """(T, T_d) [K] at the end of the annual forcing series (instantaneous, not a mean)."""
        dt = SECONDS_PER_YEAR / substeps
        t = d = 0.0
        for f in np.asarray(forcing, dtype=np.float64):
            for _ in range(substeps):
                t = (t + dt / self.heat_capacity * (f + self.gamma * d)) / (
                    1.0 + dt / self.heat_capacity * (self.lam + self.gamma)
                )
                d = d + dt * self.gamma * (t - d) / self.deep_heat_capacity
        return t, d
