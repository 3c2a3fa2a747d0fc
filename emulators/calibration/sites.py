"""Twin sites for MdPL calibration: real station forcing, site features, hidden parameters, and
the reference model's noisy "observations" made with those hidden parameters.

A site is one land-cover tile (evergreen forest, woodland, grassland or cropland) driven by one
station-year of the real weather shipped with the package (``emulators.forcing``: Wageningen
daily weather years, the TMY3/IWEC typical years), at daily steps. Its *static features* (what
the parameter generator sees) are its latitude and the forcing climatology (annual means of air
temperature, shortwave, log precipitation, saturation deficit) plus the class one-hot.

Hidden parameters (normalised to [0, 1] by the published ranges) are the class default shifted
by a class offset shared by the sites of a class, plus a smooth function of one climate feature
(aridity), plus a small site noise: transferable within a class, as MdPL assumes of PFTs.
The reference model runs a spin-up of ``spinup_days`` then the year, from the
parameter-independent initial state; the emulator rollout follows the same protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from emulators import parameters as P
from emulators.constants import SECONDS_PER_DAY
from emulators.protocol import LandState, LandStatic, StepClock
from emulators.reference.model import ReferenceBackend, ReferenceConfig
from emulators.variables import REQUIRED_FORCING

Tensor = torch.Tensor
#: the four MdPL plant-functional types, in the order of the twin's classes
CLASSES: tuple[P.LandCover, ...] = (
    P.LandCover.EVERGREEN_BROADLEAF_FOREST,
    P.LandCover.DECIDUOUS_FOREST_WOODLAND,
    P.LandCover.GRASSLAND,
    P.LandCover.CROPLAND,
)
#: station-years of real forcing (source, options); the Wageningen years skip 1990-1991 (gaps)
WAGENINGEN_YEARS = tuple(y for y in range(1976, 2000) if y not in (1990, 1991))
FEATURE_NAMES = ("lat", "tas_mean", "rsds_mean", "log_pr_mean", "qdef_mean", "aridity")
TIMESTEP = SECONDS_PER_DAY  # daily steps
#: every site runs on this non-leap calendar (the weather of its own station-year)
CALENDAR_START = np.datetime64("2001-01-01T00:00:00", "s")


def forcing_pool() -> list[tuple[str, dict[str, object]]]:
    """All station-years a twin site can be driven by."""
    pool: list[tuple[str, dict[str, object]]] = [
        ("pcse-wageningen", {"years": (y, y)}) for y in WAGENINGEN_YEARS
    ]
    pool += [
        ("tmy3-greensboro", {}),
        ("epw-amsterdam", {"missing_pr": "zero"}),
        ("tmy3-sandpoint", {}),
    ]
    return pool


@dataclass(frozen=True)
class TwinConfig:
    """The synthetic twin: ``sites_per_class`` sites in each of ``CLASSES[:classes]``."""

    sites_per_class: int = 6
    classes: int = 4
    days: int = 365
    spinup_days: int = 60
    first_day: int = 0  # 0-based day of the year where the evaluated period starts
    noise_wm2: float = 5.0  # observation noise (Gaussian, daily LE and H) [W m-2]
    class_shift: float = 0.35  # max |class offset| of the hidden parameters (normalised)
    site_spread: float = 0.1  # slope of the hidden parameters on aridity (normalised)
    site_noise: float = 0.03  # site noise of the hidden parameters (normalised)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.classes <= len(CLASSES):
            raise ValueError(f"classes: must be in 1..{len(CLASSES)}, got {self.classes}")
        if self.sites_per_class < 1:
            raise ValueError(f"sites_per_class: must be >= 1, got {self.sites_per_class}")
        if self.sites_per_class * self.classes > len(forcing_pool()):
            raise ValueError(
                f"sites: {self.sites_per_class * self.classes} sites need more than the "
                f"{len(forcing_pool())} station-years available"
            )
        if not 30 <= self.days <= 365 or not 0 <= self.spinup_days <= 365:
            raise ValueError("days: must be in 30..365; spinup_days in 0..365")
        if not 0 <= self.first_day <= 365 - self.days:
            raise ValueError(f"first_day: must be in 0..{365 - self.days}, got {self.first_day}")
        if self.noise_wm2 < 0:
            raise ValueError("noise_wm2: must be >= 0")

    @property
    def n_sites(self) -> int:
        return self.sites_per_class * self.classes


@dataclass
class Sites:
    """Twin sites, time-major (T, site) float64 arrays; rows are sites.

    forcing: registry forcing over spin-up + year; cleaf: the reference's leaf carbon before
    each step (the emulator's observed-LAI driver); obs/truth: LE (``hfls``) and H (``hfss``)
    daily means of the year, with and without noise; lai: the reference's LAI of the year."""

    names: tuple[str, ...]
    tile: np.ndarray  # (site,) class index
    lat: np.ndarray
    lon: np.ndarray
    time: np.ndarray  # (T,) datetime64[s] step starts, spin-up included
    forcing: dict[str, np.ndarray]
    cleaf: np.ndarray
    features: np.ndarray  # (site, F) raw static features (FEATURE_NAMES), then class one-hot
    hidden: np.ndarray  # (site, 12) hidden parameters (physical units)
    truth: dict[str, np.ndarray]
    obs: dict[str, np.ndarray]
    lai: np.ndarray
    spinup: int

    @property
    def n(self) -> int:
        return int(self.tile.shape[0])

    def subset(self, rows: np.ndarray) -> Sites:
        return Sites(
            names=tuple(self.names[i] for i in rows),
            tile=self.tile[rows],
            lat=self.lat[rows],
            lon=self.lon[rows],
            time=self.time,
            forcing={k: v[:, rows] for k, v in self.forcing.items()},
            cleaf=self.cleaf[:, rows],
            features=self.features[rows],
            hidden=self.hidden[rows],
            truth={k: v[:, rows] for k, v in self.truth.items()},
            obs={k: v[:, rows] for k, v in self.obs.items()},
            lai=self.lai[:, rows],
            spinup=self.spinup,
        )


def _load(
    source: str, options: dict[str, object], cfg: TwinConfig
) -> tuple[dict[str, np.ndarray], float, float, np.ndarray]:
    """Forcing of one station-year at daily steps: days ``first_day − spinup_days`` to
    ``first_day + days`` of the year (a spin-up before 1 January takes the year's last days,
    standing in for the previous year's end); times on the twin's common (non-leap) calendar
    from ``CALENDAR_START``."""
    from emulators import forcing

    ds = forcing.load(source, timestep=TIMESTEP, **options)
    n = ds.sizes["time"]
    days = np.arange(cfg.first_day - cfg.spinup_days, cfg.first_day + cfg.days)
    if n < 365:
        raise ValueError(f"{source}: {n} days, need a year")
    idx = days % n
    arrays = {k: ds[k].values[idx, 0].astype(np.float64) for k in REQUIRED_FORCING}
    times = CALENDAR_START + days.astype("timedelta64[D]")
    return arrays, float(ds["lat"].values[0]), float(ds["lon"].values[0]), times


def _climate(f: dict[str, np.ndarray], lat: float) -> np.ndarray:
    from emulators import physics

    qs, _ = physics.saturation_specific_humidity(
        torch.as_tensor(f["tas"]), torch.as_tensor(f["ps"])
    )
    qdef = float((qs.numpy() - f["huss"]).mean())
    pr_mm_day = float(f["pr"].mean() * 86_400)
    rsds = float(f["rsds"].mean())
    aridity = rsds / (28.9 * (pr_mm_day + 0.5))  # radiative dryness index (Budyko-like)
    return np.array([lat, f["tas"].mean(), rsds, np.log1p(pr_mm_day), qdef * 1e3, aridity])


def hidden_parameters(cfg: TwinConfig, tile: np.ndarray, aridity: np.ndarray) -> np.ndarray:
    """(site, 12) hidden parameters in physical units (module docstring)."""
    rng = np.random.default_rng(cfg.seed + 1000)
    low, high = (t.numpy() for t in P.bounds())
    default = P.default_table().numpy()
    u0 = (default - low) / (high - low)  # (class, 12)
    shift = rng.uniform(-cfg.class_shift, cfg.class_shift, (P.N_CLASSES, P.N_PARAMETERS))
    slope = rng.uniform(-cfg.site_spread, cfg.site_spread, P.N_PARAMETERS)
    z = (aridity - aridity.mean()) / max(float(aridity.std()), 1e-9)
    u = u0[tile] + shift[tile] + slope * np.tanh(z)[:, None]
    u = u + cfg.site_noise * rng.standard_normal(u.shape)
    u = np.clip(u, 0.03, 0.97)
    return low + (high - low) * u


def run_reference(
    forcing: dict[str, np.ndarray],
    times: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    tile: np.ndarray,
    params: np.ndarray,
) -> dict[str, np.ndarray]:
    """The reference model at daily steps over ``forcing`` (T, site), each site a single-class
    cell with its ``params`` (site, 12) in its class row (defaults elsewhere). Returns (T, site)
    ``hfls``, ``hfss``, ``lai`` after each step and ``cleaf`` before it."""
    n, k = len(tile), P.N_CLASSES
    table = P.default_table().unsqueeze(0).repeat(n, 1, 1)
    table[torch.arange(n), torch.as_tensor(tile)] = torch.as_tensor(params, dtype=torch.float64)
    cover = torch.nn.functional.one_hot(torch.as_tensor(tile), k).double()
    static = LandStatic(
        torch.as_tensor(lat, dtype=torch.float64),
        torch.as_tensor(lon, dtype=torch.float64),
        cover,
        table.unsqueeze(0),
    )
    backend = ReferenceBackend(ReferenceConfig())
    clock = StepClock(0, times[0], float(TIMESTEP))
    state: LandState = backend.initial_state(static, clock)
    rows = torch.arange(n)
    col = torch.as_tensor(tile)
    out: dict[str, list[np.ndarray]] = {"hfls": [], "hfss": [], "lai": [], "cleaf": []}
    for i in range(len(times)):
        out["cleaf"].append(state.tensors["cleaf"][0, rows, col].numpy().copy())
        f = {name: torch.as_tensor(v[i : i + 1]) for name, v in forcing.items()}
        state, tiles = backend.step_tiles(state, static, f, clock)
        for name in ("hfls", "hfss", "lai"):
            out[name].append(tiles[name][0, rows, col].numpy().copy())
        clock = clock.advance()
    return {k_: np.stack(v) for k_, v in out.items()}


def make_sites(cfg: TwinConfig) -> Sites:
    """The twin's sites with their hidden parameters and noisy observations."""
    rng = np.random.default_rng(cfg.seed)
    pool = forcing_pool()
    order = rng.permutation(len(pool))[: cfg.n_sites]
    steps = cfg.spinup_days + cfg.days
    tile = np.repeat([int(c) for c in CLASSES[: cfg.classes]], cfg.sites_per_class)
    forcing: dict[str, list[np.ndarray]] = {k: [] for k in REQUIRED_FORCING}
    names, lats, lons, climate = [], [], [], []
    times = None
    for j, idx in enumerate(order):
        source, options = pool[int(idx)]
        arrays, lat, lon, t = _load(source, options, cfg)
        times = t if times is None else times
        for k in REQUIRED_FORCING:
            forcing[k].append(arrays[k])
        label = source + (f"-{options['years'][0]}" if "years" in options else "")  # type: ignore[index]
        names.append(f"{P.LandCover(int(tile[j])).short}-{j:02d}-{label}")
        lats.append(lat)
        lons.append(lon)
        climate.append(_climate(arrays, lat))
    assert times is not None
    f = {k: np.stack(v, axis=1) for k, v in forcing.items()}
    lat_a, lon_a, clim = np.array(lats), np.array(lons), np.array(climate)
    hidden = hidden_parameters(cfg, tile, clim[:, -1])
    ref = run_reference(f, times, lat_a, lon_a, tile, hidden)
    year = slice(cfg.spinup_days, steps)
    truth = {k: ref[k][year] for k in ("hfls", "hfss")}
    obs = {k: v + cfg.noise_wm2 * rng.standard_normal(v.shape) for k, v in truth.items()}
    onehot = np.eye(P.N_CLASSES)[tile]
    return Sites(
        names=tuple(names),
        tile=tile,
        lat=lat_a,
        lon=lon_a,
        time=times,
        forcing=f,
        cleaf=ref["cleaf"],
        features=np.concatenate([clim, onehot], axis=1),
        hidden=hidden,
        truth=truth,
        obs=obs,
        lai=ref["lai"][year],
        spinup=cfg.spinup_days,
    )
