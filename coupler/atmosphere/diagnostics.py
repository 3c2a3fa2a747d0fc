"""Annual and seasonal diagnostics of a coupled run, and its yearly global energy budget.

``Accumulator.add`` is the step hook: it sums the atmosphere's cell fields (all cells) and the
land's fields (land cells) into annual and seasonal (DJF, MAM, JJA, SON; DJF = January, February
and December of the same calendar year) means, and the step's global budget into yearly means.
``Accumulator.dataset`` returns them as an xarray Dataset with CF-style attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from coupler.atmosphere.column import ColumnState, Prepared, StepBudget
from coupler.atmosphere.grid import CellGrid
from coupler.atmosphere.scenario import as_seconds
from emulators import variables as V

CELL_FIELDS: tuple[str, ...] = (
    "tas", "huss", "pr", "clt", "rsds", "rlds", "rsdt", "rsut", "rlut", "tos", "hfls", "hfss",
    "evspsbl",
)  # fmt: skip
LAND_FIELDS: tuple[str, ...] = (
    "hfls", "hfss", "evspsbl", "tran", "lai", "albedo", "ts", "gpp", "mrso", "rsus", "rlus",
)  # fmt: skip
SEASONAL_CELL: tuple[str, ...] = ("tas", "pr")
SEASONAL_LAND: tuple[str, ...] = ("hfls", "lai", "albedo")
SEASONS: tuple[str, ...] = ("DJF", "MAM", "JJA", "SON")
BUDGET_TERMS: tuple[str, ...] = ("toa", "surface", "atmosphere", "ocean", "qflux", "land")
_SEASON_OF_MONTH = np.array([0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0])
_EXTRA = {
    "clt": ("1", "Cloud Area Fraction"),
    "rsdt": ("W m-2", "TOA Incident Shortwave Radiation"),
    "rsut": ("W m-2", "TOA Outgoing Shortwave Radiation"),
    "rlut": ("W m-2", "TOA Outgoing Longwave Radiation"),
    "tos": ("K", "Sea Surface Temperature (mixed layer)"),
}


@dataclass
class _Sums:
    values: np.ndarray
    counts: np.ndarray


def _month(time: np.datetime64) -> int:
    return int(as_seconds(time).astype("datetime64[M]").astype(np.int64) % 12)


def _year(time: np.datetime64) -> int:
    return int(as_seconds(time).astype("datetime64[Y]").astype(np.int64)) + 1970


class Accumulator:
    """Sums over the years ``first_year … first_year + n_years − 1`` (other steps ignored)."""

    def __init__(self, grid: CellGrid, first_year: int, n_years: int) -> None:
        self.grid = grid
        self.first_year = first_year
        self.n_years = n_years
        n, nl = grid.n_cells, grid.land_index.size
        self.cell = {k: np.zeros((n_years, n)) for k in CELL_FIELDS}
        self.land = {k: np.zeros((n_years, nl)) for k in LAND_FIELDS}
        self.steps = np.zeros(n_years)
        self.season_cell = {k: np.zeros((n_years, 4, n)) for k in SEASONAL_CELL}
        self.season_land = {k: np.zeros((n_years, 4, nl)) for k in SEASONAL_LAND}
        self.season_steps = np.zeros((n_years, 4))
        self.budget = {k: np.zeros(n_years) for k in BUDGET_TERMS}
        self.residual_max = np.zeros(n_years)
        self.land_seen: set[str] = set()  # land fields the surface provides

    def add(
        self,
        prep: Prepared,
        state: ColumnState,
        budget: StepBudget,
        fields: dict[str, np.ndarray],
        land: dict[str, np.ndarray],
    ) -> None:
        y = _year(prep.time) - self.first_year
        if not 0 <= y < self.n_years:
            return
        s = int(_SEASON_OF_MONTH[_month(prep.time)])
        for k in CELL_FIELDS:
            self.cell[k][y] += fields[k]
        for k in LAND_FIELDS:
            if k in land:
                self.land[k][y] += land[k]
                self.land_seen.add(k)
        for k in SEASONAL_CELL:
            self.season_cell[k][y, s] += fields[k]
        for k in SEASONAL_LAND:
            if k in land:
                self.season_land[k][y, s] += land[k]
        self.steps[y] += 1
        self.season_steps[y, s] += 1
        for k in BUDGET_TERMS:
            self.budget[k][y] += getattr(budget, k)
        self.residual_max[y] = max(self.residual_max[y], abs(budget.residual))

    def dataset(self) -> xr.Dataset:
        """Annual (year, cell|land_cell), seasonal (year, season, ...) means, the yearly global
        budget [W m-2] and its residual."""
        g = self.grid
        steps = np.where(self.steps > 0, self.steps, np.nan)[:, None]
        sst = np.where(self.season_steps > 0, self.season_steps, np.nan)[:, :, None]
        data: dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, str]]] = {}
        for k in CELL_FIELDS:
            data[k] = (("year", "cell"), self.cell[k] / steps, _attrs(k))
        nan = np.full(self.land[LAND_FIELDS[0]].shape, np.nan)
        for k in LAND_FIELDS:
            mean = self.land[k] / steps if k in self.land_seen else nan
            data[f"land_{k}"] = (("year", "land_cell"), mean, _attrs(k, "land "))
        for k in SEASONAL_CELL:
            data[f"{k}_seasonal"] = (
                ("year", "season", "cell"),
                self.season_cell[k] / sst,
                _attrs(k),
            )
        for k in SEASONAL_LAND:
            mean = (
                self.season_land[k] / sst if k in self.land_seen else self.season_land[k] * np.nan
            )
            data[f"land_{k}_seasonal"] = (("year", "season", "land_cell"), mean, _attrs(k, "land "))
        bsteps = np.where(self.steps > 0, self.steps, np.nan)
        for k in BUDGET_TERMS:
            data[f"budget_{k}"] = (
                ("year",), self.budget[k] / bsteps,
                {"units": "W m-2", "long_name": f"global mean {_BUDGET_NAMES[k]}"},
            )  # fmt: skip
        residual = (
            self.budget["toa"] - self.budget["surface"] - self.budget["atmosphere"]
        ) / bsteps
        data["budget_residual"] = (
            ("year",), residual,
            {"units": "W m-2", "long_name": "TOA net - surface net - atmospheric storage change"},
        )  # fmt: skip
        data["budget_residual_step_max"] = (
            ("year",), self.residual_max,
            {"units": "W m-2", "long_name": "largest |residual| of a single step in the year"},
        )  # fmt: skip
        w = g.weights
        data["tas_global"] = (
            ("year",), (self.cell["tas"] / steps) @ w,
            {"units": "K", "long_name": "global-mean near-surface air temperature"},
        )  # fmt: skip
        land_w = (g.area * g.land_fraction)[g.land_index]
        land_w = land_w / land_w.sum()
        data["tas_land"] = (
            ("year",), (self.cell["tas"][:, g.land_index] / steps) @ land_w,
            {"units": "K", "long_name": "land-mean near-surface air temperature"},
        )  # fmt: skip
        coords = {
            "year": np.arange(self.first_year, self.first_year + self.n_years),
            "season": ("season", np.arange(4), {"names": " ".join(SEASONS)}),
            "lat": ("cell", g.lat, {"units": "degrees_north"}),
            "lon": ("cell", g.lon, {"units": "degrees_east"}),
            "areacella": ("cell", g.area, {"units": "m2"}),
            "sftlf": ("cell", 100.0 * g.land_fraction, {"units": "%"}),
            "land_cell_index": ("land_cell", g.land_index),
        }
        ds = xr.Dataset(data, coords=coords)
        if g.shape is not None:
            ds.attrs["grid_shape"] = list(g.shape)
        return ds


_BUDGET_NAMES = {
    "toa": "TOA net downward radiation",
    "surface": "net downward energy flux into the surface",
    "atmosphere": "atmospheric energy storage change",
    "ocean": "ocean heat storage change (per cell area)",
    "qflux": "slab-ocean q-flux source (per cell area)",
    "land": "net downward energy flux into the land (per cell area)",
}


def _attrs(name: str, prefix: str = "") -> dict[str, str]:
    if name in V.REGISTRY:
        var = V.REGISTRY[name]
        return {"units": var.units, "long_name": prefix + var.long_name}
    units, long_name = _EXTRA[name]
    return {"units": units, "long_name": prefix + long_name}
