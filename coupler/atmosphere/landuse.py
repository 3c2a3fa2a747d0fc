"""Land-use change for coupled runs (``landcoupler run --land-use-change``): a seeded, stylised
SSP land-use trajectory at the LULC U-Net's coarse resolution (40′), downscaled by the U-Net
(``emulators/artifacts/lulc_unet``, docs/lulc.md) each model year and aggregated to the run
grid's land-cover fractions, which the driver sends to every session through the client API
(``Session.update_land_cover``).

**The trajectory is stylised, not LUH2.** No land-use data set ships with the installed
packages (fair's RCMIP tables hold land-use *forcing* and AFOLU emissions, not areas), so the
scenario is a documented rule: every year, a fixed share of each source class's area becomes
the target class (``RATES``, per SSP), scaled per biome (``BIOME_SCALE``: expansion in the
tropics and savannas, none on ice, desert or tundra) and per 40′ block by a seeded log-normal
factor (mean 1, σ_log 0.5) that makes the coarse input heterogeneous. The rates are chosen so
that the qualitative SSP narratives hold (SSP3-7.0: strong agricultural expansion and
deforestation; SSP5-8.5: moderate cropland expansion, more urban growth); their magnitudes,
≈ 0.1–0.6 % of a class's area per year, are of the order of LUH2's tropical conversion rates,
not taken from it.

**Chain per model year.** Coarse input of each 40′ block of a run cell's footprint = the land
part (the run's biome cover, transformed by the trajectory up to that year) times the block's
land share, plus its water share (ocean and lakes, from the U-Net's own features) as
``WATER_ICE``. The U-Net gives 5′ fractions that aggregate exactly to the blocks; the run cell's
land-part cover is their land-weighted mean over the footprint, Σ (1 − water) Q / Σ (1 − water).
The run's cover in year t is the start cover plus the change since the start year,
cover₀ + A(t) − A(t₀), clipped at 0 and renormalised (so a run with land-use change starts from
exactly the cover of the run without). Since the U-Net conserves each block, the land-weighted
aggregate differs from the blocks' land-share-weighted mean only where water and land share a
block (coasts, lakes); ``Downscaled.unet_minus_blocks`` reports that difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import emulators
from coupler.atmosphere import landcover
from coupler.atmosphere.grid import CellGrid
from emulators.lulc import features as LF
from emulators.lulc.grid import N_COLS, N_ROWS, PX_PER_DEGREE, Window
from emulators.manifest import Manifest
from emulators.parameters import N_CLASSES, LandCover

L = LandCover
FACTOR = 8  # fine pixels per coarse block side (40′ / 5′)
#: the shipped U-Net (its manifest names the ONNX file and its sha256, checked on loading)
ARTIFACTS = Path(emulators.__file__).resolve().parent / "artifacts" / "lulc_unet"
#: per scenario: (source, target, share of the source's area converted per year [yr-1])
RATES: dict[str, tuple[tuple[LandCover, LandCover, float], ...]] = {
    "ssp370": (
        (L.EVERGREEN_BROADLEAF_FOREST, L.CROPLAND, 0.003),
        (L.EVERGREEN_BROADLEAF_FOREST, L.GRASSLAND, 0.003),
        (L.DECIDUOUS_FOREST_WOODLAND, L.CROPLAND, 0.002),
        (L.DECIDUOUS_FOREST_WOODLAND, L.GRASSLAND, 0.002),
        (L.GRASSLAND, L.CROPLAND, 0.003),
        (L.SHRUBLAND, L.GRASSLAND, 0.002),
        (L.CROPLAND, L.URBAN, 0.0005),
    ),
    "ssp585": (
        (L.EVERGREEN_BROADLEAF_FOREST, L.CROPLAND, 0.002),
        (L.EVERGREEN_BROADLEAF_FOREST, L.GRASSLAND, 0.001),
        (L.DECIDUOUS_FOREST_WOODLAND, L.CROPLAND, 0.0015),
        (L.GRASSLAND, L.CROPLAND, 0.002),
        (L.SHRUBLAND, L.CROPLAND, 0.001),
        (L.CROPLAND, L.URBAN, 0.001),
    ),
}
#: multiplier of the rates per biome (``landcover.BIOME_NAMES``)
BIOME_SCALE = {
    "ice sheet": 0.0, "tundra": 0.0, "boreal forest": 0.3, "desert": 0.0, "dryland": 0.8,
    "tropical forest": 2.0, "savanna": 1.5, "temperate": 0.6,
}  # fmt: skip
SIGMA_LOG = 0.5


class LandUseError(ValueError):
    """A run that cannot have land-use change; ``field`` and ``rule`` say why."""

    def __init__(self, message: str, *, field: str, rule: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.rule = field, rule


class _HasResolution(Protocol):
    @property
    def resolution(self) -> float | None: ...


def check(scenario: str, grid: _HasResolution) -> None:
    """Refuse a scenario without a trajectory or a grid whose cells are not whole 40′ blocks of
    a regular grid."""
    if scenario not in RATES:
        raise LandUseError(
            f"no land-use trajectory for scenario {scenario!r} (have {', '.join(RATES)})",
            field="scenario", rule="land_use_trajectory",
        )  # fmt: skip
    res = grid.resolution
    px = None if res is None else res * PX_PER_DEGREE
    if px is None or abs(px - round(px)) > 1e-9 or round(px) % FACTOR:
        raise LandUseError(
            f"land-use change needs a regular grid of whole 40′ blocks (a multiple of 2/3°), "
            f"got {res}", field="resolution", rule="whole_blocks",
        )  # fmt: skip


@dataclass(frozen=True)
class Footprints:
    """The 5′ footprints of the run's land cells that land use changes (``cells``: positions
    in the land-cell order); ``features`` (cell, 9, n, n) float32 and ``water`` (cell, n, n)."""

    cells: np.ndarray
    features: np.ndarray
    water: np.ndarray

    @property
    def land_share(self) -> np.ndarray:
        """(cell, b, b) land share of each 40′ block."""
        n, s = self.water.shape[0], self.water.shape[1] // FACTOR
        blocks = self.water.reshape(n, s, FACTOR, s, FACTOR).mean(axis=(2, 4))
        return 1.0 - blocks


def footprints(grid: CellGrid, cells: np.ndarray) -> Footprints:
    """Features of the footprints of land cells ``cells`` (positions in ``grid.land_index``),
    computed band by band (one latitude row of run cells at a time, over the columns the band's
    cells need); a window gives the same values as the global field (``lulc.features``)."""
    if grid.resolution is None:
        raise LandUseError("a cell list has no footprints", field="resolution",
                           rule="whole_blocks")  # fmt: skip
    n = round(grid.resolution * PX_PER_DEGREE)
    land = grid.land_index[cells]
    lat, lon = grid.lat[land], grid.lon[land]
    half = n / PX_PER_DEGREE / 2
    rows = np.rint((90.0 - (lat + half)) * PX_PER_DEGREE).astype(int)
    cols = np.rint(((lon - half + 180.0) % 360.0) * PX_PER_DEGREE).astype(int)
    feats = np.empty((cells.size, LF.N_FEATURES, n, n), np.float32)
    for row in np.unique(rows):
        here = np.flatnonzero(rows == row)
        # the band's columns from the westernmost footprint on (the whole circle if they wrap)
        first, span = int(cols[here].min()), int(cols[here].max()) + n - int(cols[here].min())
        first, span = (first, span) if span < N_COLS else (0, N_COLS)
        band = LF.compute(Window(min(max(int(row), 0), N_ROWS - n), first, n, span))
        for i in here:
            take = (np.arange(cols[i], cols[i] + n) - first) % N_COLS
            feats[i] = band[:, :, take]
    water = LF.water_fraction(feats.transpose(1, 0, 2, 3)).astype(np.float64)
    return Footprints(cells, feats, water)


@dataclass(frozen=True)
class Downscaled:
    """One year's land-part cover of the changing cells (cell, 8), by the U-Net and by the
    blocks' land-share-weighted mean, and the largest |difference| (what the U-Net adds)."""

    unet: np.ndarray
    blocks: np.ndarray

    @property
    def unet_minus_blocks(self) -> float:
        return float(np.abs(self.unet - self.blocks).max()) if self.unet.size else 0.0


class Trajectory:
    """The seeded stylised trajectory on the 40′ blocks of the changing cells' footprints."""

    def __init__(
        self, scenario: str, start_year: int, cover: np.ndarray, biome: np.ndarray,
        blocks: int, seed: int = 0,
    ) -> None:  # fmt: skip
        self.rates = RATES[scenario]
        self.start_year = int(start_year)
        n = cover.shape[0]
        names = np.asarray(landcover.BIOME_NAMES)[np.asarray(biome)]
        scale = np.array([BIOME_SCALE[str(b)] for b in names])
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, blocks, blocks))
        self.multiplier = scale[:, None, None] * np.exp(SIGMA_LOG * z - SIGMA_LOG**2 / 2)
        self.start = np.broadcast_to(cover[:, None, None, :], (n, blocks, blocks, N_CLASSES))

    def land_part(self, year: int) -> np.ndarray:
        """(cell, b, b, 8) land-part fractions of the blocks at the start of ``year`` (the
        changes of the years start_year … year − 1 applied in order)."""
        frac = np.array(self.start, dtype=np.float64)
        for _ in range(max(0, int(year) - self.start_year)):
            for src, dst, rate in self.rates:
                moved = np.minimum(rate * self.multiplier, 1.0) * frac[..., int(src)]
                frac[..., int(src)] -= moved
                frac[..., int(dst)] += moved
        return frac


class LandUse:
    """The run's land cover per model year (module docstring). ``cover``: (land cell, 8) start
    cover; ``biome``: (land cell,) biome indices. Cells whose biome has no land use keep their
    cover and are not downscaled."""

    def __init__(
        self, scenario: str, grid: CellGrid, cover: np.ndarray, biome: np.ndarray,
        start_year: int, seed: int = 0, batch: int = 8,
    ) -> None:  # fmt: skip
        check(scenario, grid)
        names = np.asarray(landcover.BIOME_NAMES)[np.asarray(biome)]
        changing = np.array([BIOME_SCALE[str(b)] > 0 for b in names])
        self.cells = np.flatnonzero(changing)
        self.cover0 = np.array(cover, dtype=np.float64)
        self.fp = footprints(grid, self.cells)
        self.blocks = self.fp.water.shape[1] // FACTOR
        self.trajectory = Trajectory(
            scenario, start_year, self.cover0[self.cells], biome[self.cells], self.blocks, seed
        )
        self.batch = batch
        self._session = _onnx_session()
        self.first = self.downscale(start_year)

    def downscale(self, year: int) -> Downscaled:
        """Coarse input of ``year`` → U-Net → land-part cover of the changing cells."""
        part = self.trajectory.land_part(year)
        share = self.fp.land_share[..., None]
        coarse = share * part
        coarse[..., int(L.WATER_ICE)] += 1.0 - share[..., 0]
        coarse_in = np.ascontiguousarray(coarse.transpose(0, 3, 1, 2), dtype=np.float32)
        land_w = 1.0 - self.fp.water
        unet = np.empty((self.cells.size, N_CLASSES))
        for s in range(0, self.cells.size, self.batch):
            sl = slice(s, s + self.batch)
            feed = {"coarse": coarse_in[sl], "features": self.fp.features[sl]}
            (fine,) = self._session.run(None, feed)
            w = land_w[sl][:, None]
            unet[sl] = (fine * w).sum(axis=(2, 3)) / w.sum(axis=(2, 3)).clip(1e-12)
        blocks = (part * share).sum(axis=(1, 2)) / share.sum(axis=(1, 2)).clip(1e-12)
        return Downscaled(unet, blocks)

    def cover(self, year: int) -> tuple[np.ndarray, Downscaled]:
        """(land cell, 8) cover for ``year``: start cover + U-Net change since the start year
        (cells where that goes below 0 clipped and renormalised); and that year's
        downscaling. The start year gives the start cover bitwise."""
        d = self.downscale(year)
        out = self.cover0.copy()
        new = self.cover0[self.cells] + (d.unet - self.first.unet)
        clipped = (new < 0).any(axis=1)  # only these are renormalised (the rest sum to 1)
        new[clipped] = new[clipped].clip(0.0, None)
        new[clipped] /= new[clipped].sum(axis=1, keepdims=True)
        out[self.cells] = new
        return out, d


def _onnx_session() -> Any:
    """The U-Net's ONNX artifact on one CPU thread (onnxruntime, ≈ 2× faster than TorchScript
    here: 3.6 vs 6.5 µs per 5′ pixel)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    path = Manifest.load(ARTIFACTS).artifact_path(ARTIFACTS, "onnx")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def regional_cover_change(
    cover0: np.ndarray, cover1: np.ndarray, weights: np.ndarray, masks: Mapping[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Per region, the weighted change (percentage points of the land) of crop, pasture/grass,
    forest and urban fractions from ``cover0`` to ``cover1``."""
    groups = {
        "crop": [L.CROPLAND], "grass": [L.GRASSLAND], "urban": [L.URBAN],
        "forest": [L.EVERGREEN_BROADLEAF_FOREST, L.DECIDUOUS_FOREST_WOODLAND],
    }  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    for region, mask in {"global": np.ones(len(weights), bool), **masks}.items():
        w = weights * mask
        total = w.sum()
        out[region] = {
            g: float(100.0 * ((cover1 - cover0)[:, [int(c) for c in cls]].sum(1) * w).sum()
                     / total) if total > 0 else float("nan")
            for g, cls in groups.items()
        }  # fmt: skip
    return out
