"""What a session is: :class:`SessionSpec` (and its :class:`GridSpec`), one frozen dataclass
that validates itself, used by the gRPC client, the in-process client, the servicer and the core.

Every violation raises :class:`~coupler.errors.InvalidArgument` with ``field`` = the proto field
name (``lat``, ``timestep``, ``outputs``, ...) and ``rule`` = the broken rule, so a client refuses
a bad spec exactly as the server would. Arrays are copied, converted to float64 and made
read-only, so a spec can be shared between threads, the checkpoint and the recorder. No torch and
no gRPC here: ``import coupler.client`` stays light. What the spec cannot know (which backends a
server has) the service checks when the session is opened (``backend``/``known_backend``).

:meth:`SessionSpec.of` is the one place the ``open_session`` keyword arguments are turned into a
spec (``members`` None, a single output name, an empty grid shape, assimilation options).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from coupler.assimilation import configio
from coupler.assimilation.settings import AssimilationConfig
from coupler.errors import InvalidArgument
from coupler.spec.grid import GridSpec, bad
from coupler.spec.record import RecordOptions
from coupler.spec.times import parse_start
from emulators import landcover as P
from emulators import variables as V
from emulators.constants import (
    DEFAULT_HEIGHT_TEMPERATURE,
    DEFAULT_HEIGHT_WIND,
    MAX_HEIGHT,
    SECONDS_PER_DAY,
)

#: ensemble size of a session with assimilation when none is given
DEFAULT_DA_MEMBERS = 20
_RUN_ID = re.compile(r"^[A-Za-z0-9._:@+/=-]{0,256}$")
_OUTPUT_DIRECTIONS = (V.Direction.TO_ATMOSPHERE, V.Direction.DIAGNOSTIC)
#: the grid's keyword arguments of :meth:`SessionSpec.of`
GRID_ARGUMENTS = ("lat", "lon", "area", "land_fraction", "grid_shape")


@dataclass(frozen=True, eq=False)
class SessionSpec:
    """Everything that defines a session; see the module docstring for the error contract.

    start: UTC start of step 0 (np.datetime64 or ISO 8601 string, stored at seconds resolution).
    timestep: s, > 0, divides 86400 or is a multiple of it. outputs: registry names of
    TO_ATMOSPHERE or DIAGNOSTIC variables. land_cover: a class name (``LandCover.from_name``) or
    (cell, 8) fractions (rows >= 0 summing to 1). members: ensemble size >= 1.
    checkpoint_every: steps (0 = only on request/shutdown; > 0 needs ``checkpoint_url``).
    assimilation: ensemble data assimilation settings (None = off); needs ``members`` >= 2
    (rule ``ensemble``); :data:`DEFAULT_DA_MEMBERS` is the API default when it is on.
    freeze_vegetation_year: hold the vegetation (leaf carbon, hence LAI, albedo, roughness,
    transpiration capacity) from 1 January of this year on at the seasonal cycle of that year
    (the "frozen land" of land-feedback experiments; None = dynamic vegetation). Before that
    year the land runs freely (spin-up); soil water, temperatures and fluxes stay interactive.
    record_options: codecs, keepbits, chunking of the record at ``record_url``
    (:class:`~coupler.spec.record.RecordOptions`; None = its defaults, all lossless).
    parameters_url: a calibrated parameter map (Zarr, docs/calibration.md), read and checked
    when the session opens (None = the class defaults).
    height_wind, height_temperature: heights of the forcing above the zero-plane displacement
    [m]: sfcWind's, and tas/huss's (e.g. the atmospheric model's lowest level; CLM's
    ``forc_hgt``); finite, in (0, ``MAX_HEIGHT``] (rule ``range``). Whether the backend serves
    them is checked when the session opens (rule ``backend_heights``).
    """

    grid: GridSpec
    start: np.datetime64
    timestep: int
    outputs: tuple[str, ...]
    backend: str = "reference"
    land_cover: str | np.ndarray = "grass"
    run_id: str = ""
    rank: int = 0
    members: int = 1
    output_spread: bool = False
    checkpoint_url: str | None = None
    checkpoint_every: int = 0
    record_url: str | None = None
    assimilation: AssimilationConfig | None = None
    freeze_vegetation_year: int | None = None
    record_options: RecordOptions | None = None
    parameters_url: str | None = None
    height_wind: float = DEFAULT_HEIGHT_WIND
    height_temperature: float = DEFAULT_HEIGHT_TEMPERATURE

    def __post_init__(self) -> None:
        if not isinstance(self.grid, GridSpec):
            raise bad("grid", "type", f"expected a GridSpec, got {type(self.grid).__name__}")
        self._check_time()
        self._check_outputs()
        if not isinstance(self.backend, str) or not self.backend:
            raise bad("backend", "known_backend", f"unknown backend {self.backend!r}")
        self._check_land_cover()
        if not isinstance(self.run_id, str) or not _RUN_ID.match(self.run_id):
            raise bad(
                "run_id", "format", "run_id must be at most 256 characters of [A-Za-z0-9._:@+/=-]"
            )
        for name, low in (("rank", 0), ("members", 1), ("checkpoint_every", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise bad(name, "int_range", f"must be an integer >= {low}, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not isinstance(self.output_spread, bool | np.bool_):
            raise bad("output_spread", "type", f"must be a bool, got {self.output_spread!r}")
        object.__setattr__(self, "output_spread", bool(self.output_spread))
        for name in ("checkpoint_url", "record_url", "parameters_url"):
            url = getattr(self, name)
            if url is not None and (not isinstance(url, str) or not url.strip()):
                raise bad(name, "url", f"must be a non-empty URL or unset, got {url!r}")
        if self.checkpoint_every > 0 and self.checkpoint_url is None:
            raise bad(
                "checkpoint_every",
                "needs_checkpoint_url",
                "periodic checkpoints need checkpoint_url",
            )
        year = self.freeze_vegetation_year
        if year is not None:
            if (
                isinstance(year, bool)
                or not isinstance(year, int | np.integer)
                or not (1 <= year <= 9999)
            ):
                raise bad(
                    "freeze_vegetation_year",
                    "year",
                    f"must be a year in 1..9999 or unset, got {year!r}",
                )
            object.__setattr__(self, "freeze_vegetation_year", int(year))
        for name in ("height_wind", "height_temperature"):
            height = getattr(self, name)
            if (
                isinstance(height, bool)
                or not isinstance(height, int | float | np.integer | np.floating)
                or not np.isfinite(height)
                or not 0.0 < height <= MAX_HEIGHT
            ):
                raise bad(
                    name,
                    "range",
                    f"must be a finite height in (0, {MAX_HEIGHT:g}] m, got {height!r}",
                )
            object.__setattr__(self, name, float(height))
        if self.record_options is not None and not isinstance(self.record_options, RecordOptions):
            raise bad(
                "record_options",
                "type",
                f"expected RecordOptions, got {type(self.record_options).__name__}",
            )
        if self.assimilation is not None:
            if not isinstance(self.assimilation, AssimilationConfig):
                raise bad(
                    "assimilation",
                    "type",
                    f"expected an AssimilationConfig, got {type(self.assimilation).__name__}",
                )
            if self.members < 2:
                raise bad(
                    "members",
                    "ensemble",
                    f"assimilation needs an ensemble of >= 2 members, got {self.members}",
                )

    # ---- validation helpers --------------------------------------------------------------------
    def _check_time(self) -> None:
        raw: Any = self.start
        if isinstance(raw, str):
            raw = raw.strip()
            for suffix in ("Z", "z", "+00:00"):
                if raw.endswith(suffix):
                    raw = raw[: -len(suffix)]
            if re.search(r"[+-]\d\d:?\d\d$", raw.split("T")[-1]):
                raise bad("start", "utc", f"give the start time in UTC, got {self.start!r}")
        try:
            parsed = np.datetime64(raw)
            start = parsed.astype("datetime64[s]")
        except (ValueError, TypeError) as exc:
            raise bad("start", "datetime", f"not an ISO 8601 UTC time: {self.start!r}") from exc
        if np.isnat(start):
            raise bad("start", "datetime", "start must not be NaT")
        if parsed != start:
            raise bad("start", "whole_seconds", f"{self.start!r} is not on a whole second")
        object.__setattr__(self, "start", start)
        ts = self.timestep
        if isinstance(ts, bool) or not isinstance(ts, int | np.integer) or ts <= 0:
            raise bad("timestep", "positive_int", f"must be a positive integer (s), got {ts!r}")
        if SECONDS_PER_DAY % ts and ts % SECONDS_PER_DAY:
            raise bad(
                "timestep", "divides_day", f"{ts} s neither divides 86400 s nor is a multiple of it"
            )
        object.__setattr__(self, "timestep", int(ts))

    def _check_outputs(self) -> None:
        outputs = (self.outputs,) if isinstance(self.outputs, str) else self.outputs
        if not isinstance(outputs, Sequence) or not outputs:
            raise bad("outputs", "non_empty", "request at least one output field")
        seen: set[str] = set()
        for name in outputs:
            var = V.REGISTRY.get(name) if isinstance(name, str) else None
            if var is None:
                raise bad("outputs", "known_name", f"unknown variable {name!r}")
            if var.direction not in _OUTPUT_DIRECTIONS:
                raise bad(
                    "outputs",
                    "direction",
                    f"{name!r} is {var.direction.value}, not a "
                    "land output (to_atmosphere or diagnostic)",
                )
            if name in seen:
                raise bad("outputs", "unique", f"{name!r} requested twice")
            seen.add(name)
        object.__setattr__(self, "outputs", tuple(outputs))

    def _check_land_cover(self) -> None:
        lc = self.land_cover
        if isinstance(lc, str):
            try:
                P.LandCover.from_name(lc)
            except ValueError as exc:
                raise bad("land_cover", "known_class", str(exc)) from None
            return
        arr = np.asarray(lc)
        n = self.grid.n_cells
        if arr.dtype.kind not in "fiu" or arr.shape != (n, P.N_CLASSES):
            raise bad(
                "land_cover",
                "shape",
                f"fractions of shape {arr.shape} dtype "
                f"{arr.dtype}, expected numeric ({n}, {P.N_CLASSES})",
            )
        frac = np.array(arr, dtype=np.float64, copy=True)
        if not np.isfinite(frac).all() or frac.min() < 0.0:
            raise bad("land_cover", "valid_range", "fractions must be finite and >= 0")
        if np.abs(frac.sum(axis=1) - 1.0).max() > 1e-6:
            raise bad("land_cover", "sums_to_one", "fractions of each cell must sum to 1")
        frac.flags.writeable = False
        object.__setattr__(self, "land_cover", frac)

    # ---- derived -------------------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        return self.grid.n_cells

    def step_time(self, index: int) -> np.datetime64:
        """UTC start of step ``index``."""
        return self.start + np.timedelta64(index * self.timestep, "s")

    def cover_fractions(self) -> np.ndarray:
        """(cell, 8) land-cover fractions (a named class becomes one-hot)."""
        if isinstance(self.land_cover, str):
            frac = np.zeros((self.n_cells, P.N_CLASSES))
            frac[:, int(P.LandCover.from_name(self.land_cover))] = 1.0
            return frac
        return np.array(self.land_cover)

    def reply_names(self) -> tuple[str, ...]:
        """Names in a step reply: the outputs, then ``<name>_spread`` if requested."""
        spread = tuple(f"{n}_spread" for n in self.outputs) if self.output_spread else ()
        return self.outputs + spread

    # ---- serialisation -------------------------------------------------------------------------
    #: Names of the array entries of :meth:`arrays` / :meth:`from_dict`.
    ARRAY_NAMES = ("lat", "lon", "area", "land_fraction", "land_cover")

    def arrays(self) -> dict[str, np.ndarray]:
        """The config's arrays (grid and land-cover fractions), by name; absent ones left out."""
        g = self.grid
        found = {
            "lat": g.lat,
            "lon": g.lon,
            "area": g.area,
            "land_fraction": g.land_fraction,
            "land_cover": None if isinstance(self.land_cover, str) else self.land_cover,
        }
        return {k: v for k, v in found.items() if v is not None}

    def to_dict(self, include_arrays: bool = True) -> dict[str, Any]:
        """JSON-compatible dict. Without arrays, the grid is summarised (cell count, shape) and
        the arrays must travel separately (:meth:`arrays`). Float64 arrays survive JSON exactly
        (Python writes shortest round-trip reprs)."""
        arrays = self.arrays()
        grid: dict[str, Any] = {"n_cells": self.n_cells, "shape": self.grid.shape}
        lc: Any = self.land_cover
        if include_arrays:
            grid.update(
                {
                    k: arrays[k].tolist() if k in arrays else None
                    for k in ("lat", "lon", "area", "land_fraction")
                }
            )
            if not isinstance(lc, str):
                lc = arrays["land_cover"].tolist()
        elif not isinstance(lc, str):
            lc = None
        return {
            "grid": grid,
            "start": str(self.start),
            "timestep": self.timestep,
            "outputs": list(self.outputs),
            "backend": self.backend,
            "land_cover": lc,
            "run_id": self.run_id,
            "rank": self.rank,
            "members": self.members,
            "output_spread": self.output_spread,
            "checkpoint_url": self.checkpoint_url,
            "checkpoint_every": self.checkpoint_every,
            "record_url": self.record_url,
            "assimilation": None
            if self.assimilation is None
            else configio.to_options(self.assimilation),
            "freeze_vegetation_year": self.freeze_vegetation_year,
            "record_options": None
            if self.record_options is None
            else self.record_options.to_dict(),
            "parameters_url": self.parameters_url,
            "height_wind": self.height_wind,
            "height_temperature": self.height_temperature,
        }

    def to_json(self, include_arrays: bool = True) -> str:
        return json.dumps(self.to_dict(include_arrays), sort_keys=True)

    @staticmethod
    def from_dict(d: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> SessionSpec:
        """Inverse of :meth:`to_dict`; ``arrays`` (from :meth:`arrays`) override the dict's
        grid/land-cover entries, which is how checkpoints store big grids."""
        g = dict(d["grid"])
        lc = d["land_cover"]
        if arrays is not None:
            g.update({k: v for k, v in arrays.items() if k != "land_cover"})
            lc = arrays.get("land_cover", lc)

        def arr(v: Any) -> np.ndarray | None:
            return None if v is None else np.asarray(v, dtype=np.float64)

        shape = g.get("shape")
        grid = GridSpec(
            lat=np.asarray(g["lat"], dtype=np.float64),
            lon=np.asarray(g["lon"], dtype=np.float64),
            area=arr(g.get("area")),
            land_fraction=arr(g.get("land_fraction")),
            shape=(int(shape[0]), int(shape[1])) if shape is not None else None,
        )
        return SessionSpec(
            grid=grid,
            start=np.datetime64(d["start"], "s"),
            timestep=int(d["timestep"]),
            outputs=tuple(d["outputs"]),
            backend=d["backend"],
            land_cover=lc if isinstance(lc, str) else np.asarray(lc, dtype=np.float64),
            run_id=d["run_id"],
            rank=int(d["rank"]),
            members=int(d["members"]),
            output_spread=bool(d["output_spread"]),
            checkpoint_url=d["checkpoint_url"],
            checkpoint_every=int(d["checkpoint_every"]),
            record_url=d["record_url"],
            assimilation=None
            if d.get("assimilation") is None
            else configio.from_options(d["assimilation"]),
            freeze_vegetation_year=d.get("freeze_vegetation_year"),
            record_options=None
            if d.get("record_options") is None
            else RecordOptions.from_dict(d["record_options"]),
            parameters_url=d.get("parameters_url"),
            # specs written before sessions had heights ran at the defaults
            height_wind=d.get("height_wind", DEFAULT_HEIGHT_WIND),
            height_temperature=d.get("height_temperature", DEFAULT_HEIGHT_TEMPERATURE),
        )

    @staticmethod
    def of(**kwargs: Any) -> SessionSpec:
        """A spec from ``open_session`` keyword arguments: the grid (``lat``, ``lon``, ``area``,
        ``land_fraction``, ``grid_shape``) and every other field of this class by name.
        ``assimilation`` may be an AssimilationConfig or its options dict
        (:mod:`coupler.assimilation.configio`; errors name ``assimilation.<key>``); ``members``
        None: 1, or :data:`DEFAULT_DA_MEMBERS` with assimilation; empty URLs are unset.
        Unknown names raise TypeError, as a call with a wrong keyword would."""
        known = set(GRID_ARGUMENTS) | {f.name for f in fields(SessionSpec)} - {"grid"}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"open_session() got unexpected keyword argument(s) {unknown}")
        grid_args = {k: kwargs.pop(k, None) for k in GRID_ARGUMENTS}
        da = assimilation_config(kwargs.pop("assimilation", None))
        members = kwargs.pop("members", None)
        if members is None:
            members = 1 if da is None else DEFAULT_DA_MEMBERS
        shape = grid_args.pop("grid_shape")
        if shape is not None:
            shape = tuple(shape) or None
        outputs = kwargs.pop("outputs", ())
        if isinstance(outputs, str):
            outputs = (outputs,)
        try:
            outputs = tuple(outputs)
        except TypeError:
            raise InvalidArgument(
                f"outputs: expected a list of names, got {outputs!r}", field="outputs", rule="type"
            ) from None
        for name in ("checkpoint_url", "record_url", "parameters_url"):
            kwargs[name] = kwargs.get(name) or None
        if kwargs.get("record_options") is not None:
            kwargs["record_options"] = RecordOptions.from_dict(kwargs["record_options"])
        if not kwargs.get("backend"):
            kwargs["backend"] = "reference"
        grid = GridSpec(shape=shape, **grid_args)
        return SessionSpec(
            grid=grid,
            start=parse_start(kwargs.pop("start", None)),
            timestep=kwargs.pop("timestep", 0),
            outputs=outputs,
            members=members,
            assimilation=da,
            **kwargs,
        )


def assimilation_config(
    value: AssimilationConfig | Mapping[str, Any] | None,
) -> AssimilationConfig | None:
    """An AssimilationConfig from a config, an options dict, or None (off)."""
    if value is None or isinstance(value, AssimilationConfig):
        return value
    if isinstance(value, Mapping):
        return configio.from_options(value)
    raise InvalidArgument(
        f"assimilation: expected an AssimilationConfig or a dict of options, got "
        f"{type(value).__name__}",
        field="assimilation",
        rule="type",
    )
