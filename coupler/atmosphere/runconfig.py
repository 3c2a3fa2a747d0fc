"""The configuration of a coupled run (``landcoupler run``): a YAML file and/or flags.

Every key of :class:`RunConfig` may appear in the YAML file (``years`` as ``"2015:2045"`` or a
two-item list; ``column`` a mapping of :class:`~coupler.atmosphere.column.ColumnConfig` fields);
flags override the file. Invalid values raise :class:`RunConfigError` naming the key and rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from coupler.atmosphere import scenario as S
from coupler.atmosphere.column import ColumnConfig
from coupler.errors import InvalidArgument
from coupler.spec import RecordOptions

EXPERIMENTS = ("dynamic", "frozen")
FORCING_DTYPES = ("float32", "float64")
#: the experiment with land-use change (dynamic vegetation plus the scenario's land use)
LUC = "luc"
TRANSPORTS = ("grpc", "shm", "inprocess")  # shm: gRPC, the arrays through shared memory
AR6_BASELINE = (1995, 2014)
AR6_FUTURE = (2081, 2100)


class RunConfigError(ValueError):
    """A bad run configuration value; ``field`` and ``rule`` say which and why."""

    def __init__(self, message: str, *, field: str, rule: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.rule = rule


def parse_years(value: Any) -> tuple[int, int]:
    """``"2015:2045"``, ``"2015"`` or ``[2015, 2045]`` → (2015, 2045), inclusive."""
    try:
        if isinstance(value, str):
            parts = value.split(":")
            if len(parts) == 1:
                parts = [parts[0], parts[0]]
            if len(parts) != 2:
                raise ValueError
            start, end = int(parts[0]), int(parts[1])
        else:
            start, end = (int(v) for v in value)
    except (TypeError, ValueError):
        raise RunConfigError(
            f"expected START:END calendar years, got {value!r}", field="years", rule="format"
        ) from None
    if start > end:
        raise RunConfigError(f"start {start} is after end {end}", field="years", rule="ordered")
    return start, end


@dataclass(frozen=True)
class RunConfig:
    """A coupled run. years: inclusive calendar years reported (each starts 1 January).
    spinup_years: coupled control years before ``years`` (SST held at climatology, forcing of
    ``reference_year``; they diagnose the slab ocean's q-flux and spin up the land).
    standalone_years: bucket-land spin-up of the atmosphere before that (and the climate the
    land-cover map is drawn from). experiments: "dynamic" and/or "frozen" (vegetation held at
    the start, see ``frozen``). ranks: sessions (subdomains) per experiment. jobs: experiments
    run in parallel processes. record: Zarr record URL prefix (None: no record).
    record_options: how the record is written (``coupler.spec.RecordOptions``; YAML: its
    ``from_dict`` mapping); default ``RecordOptions.compact()``: lossless forcing and start
    state, outputs bit-rounded per ``COMPACT_KEEPBITS`` (docs/replay.md).
    assimilate: URL of a Zarr observation file (docs/assimilation.md); every session then
    assimilates the observations nearest its land cells (needs members >= 2; None: no DA).
    forcing_dtype: the dtype of the forcing the atmosphere sends the land ("float32", as models
    commonly couple, or "float64"); the atmosphere's own state is float64 either way.
    baseline/future: periods compared (default: AR6's 1995-2014 and 2081-2100 when covered,
    else the first and last ten years or halves). land_use_change: add the experiment "luc"
    (dynamic vegetation and the scenario's land use, ``landuse``; its land-use feedback is
    luc − dynamic, so "dynamic" runs too); land_use_seed: the trajectory's seed."""

    scenario: str = "ssp585"
    years: tuple[int, int] = (2015, 2035)
    resolution: float = 10.0
    timestep: int = 86_400
    backend: str = "reference"
    transport: str = "grpc"
    members: int = 1
    ranks: int = 2
    experiments: tuple[str, ...] = EXPERIMENTS
    record: str | None = None
    record_options: RecordOptions = field(default_factory=RecordOptions.compact)
    out: Path = Path("out/run")
    spinup_years: int = 3
    standalone_years: int = 2
    reference_year: int = 1850
    ecs: float = 3.0
    jobs: int = 2
    min_land_fraction: float = 0.05
    baseline: tuple[int, int] | None = None
    future: tuple[int, int] | None = None
    progress: bool = True
    assimilate: str | None = None
    forcing_dtype: str = "float32"
    land_use_change: bool = False
    land_use_seed: int = 0
    column: ColumnConfig = field(default_factory=ColumnConfig)

    def __post_init__(self) -> None:
        try:
            scen = S.load(self.scenario)
            object.__setattr__(self, "years", parse_years(self.years))
            scen.check_years(self.reference_year, self.reference_year)
            scen.check_years(*self.years)
        except S.ScenarioError as exc:
            raise RunConfigError(str(exc), field=exc.field, rule=exc.rule) from None
        if self.reference_year > self.years[0] - self.spinup_years:
            raise RunConfigError(
                f"reference year {self.reference_year} must precede the spin-up",
                field="reference_year", rule="before_start",
            )  # fmt: skip
        if self.transport not in TRANSPORTS:
            raise RunConfigError(
                f"{self.transport!r} is not one of {', '.join(TRANSPORTS)}",
                field="transport", rule="choice",
            )  # fmt: skip
        if self.forcing_dtype not in FORCING_DTYPES:
            raise RunConfigError(
                f"{self.forcing_dtype!r} is not one of {', '.join(FORCING_DTYPES)}",
                field="forcing_dtype", rule="choice",
            )  # fmt: skip
        exps = (self.experiments,) if isinstance(self.experiments, str) else self.experiments
        known = (*EXPERIMENTS, LUC)
        if not exps or any(e not in known for e in exps) or len(set(exps)) != len(exps):
            raise RunConfigError(
                f"{self.experiments!r}: give distinct names among {', '.join(known)}",
                field="experiments", rule="choice",
            )  # fmt: skip
        exps = tuple(exps)
        if not isinstance(self.land_use_change, bool):
            raise RunConfigError(f"must be a bool, got {self.land_use_change!r}",
                                 field="land_use_change", rule="type")  # fmt: skip
        if self.land_use_change:
            from coupler.atmosphere import landuse

            try:  # a regular grid of this resolution, before any experiment runs
                landuse.check(self.scenario, _Regular(float(self.resolution)))
            except landuse.LandUseError as exc:
                raise RunConfigError(str(exc), field=exc.field, rule=exc.rule) from None
            exps = (*(("dynamic",) if "dynamic" not in exps else ()), *exps)
            exps = exps if LUC in exps else (*exps, LUC)
        elif LUC in exps:
            raise RunConfigError(
                "the luc experiment needs land_use_change", field="experiments", rule="choice"
            )
        object.__setattr__(self, "experiments", exps)
        for name, low in (("members", 1), ("ranks", 1), ("spinup_years", 1), ("jobs", 1),
                          ("standalone_years", 1), ("timestep", 1),
                          ("land_use_seed", 0)):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise RunConfigError(
                    f"must be an integer >= {low}, got {value!r}", field=name, rule="int_range"
                )
        if 86_400 % self.timestep:
            raise RunConfigError(
                f"{self.timestep} s must divide a day", field="timestep", rule="divides_day"
            )
        if not self.resolution > 0:
            raise RunConfigError(
                f"must be > 0 degrees, got {self.resolution}", field="resolution", rule="positive"
            )
        if not 1.0 <= self.ecs <= 10.0:
            raise RunConfigError(f"{self.ecs} K is implausible", field="ecs", rule="range")
        object.__setattr__(self, "out", Path(self.out))
        if self.assimilate is not None:
            if not isinstance(self.assimilate, str) or not self.assimilate.strip():
                raise RunConfigError(
                    f"must be an observation file URL, got {self.assimilate!r}",
                    field="assimilate", rule="url",
                )  # fmt: skip
            if self.members < 2:
                raise RunConfigError(
                    f"assimilation needs an ensemble: members must be >= 2, got {self.members}",
                    field="members", rule="ensemble",
                )  # fmt: skip
        if self.record is not None and not str(self.record).strip():
            object.__setattr__(self, "record", None)
        if self.column.dt != float(self.timestep):
            object.__setattr__(self, "column", replace(self.column, dt=float(self.timestep)))
        base, fut = self.periods()
        for name, (a, b) in (("baseline", base), ("future", fut)):
            if a > b or a < self.years[0] or b > self.years[1]:
                raise RunConfigError(
                    f"{a}:{b} must lie inside the run's years {self.years[0]}:{self.years[1]}",
                    field=name, rule="inside_run",
                )  # fmt: skip

    @property
    def n_years(self) -> int:
        return self.years[1] - self.years[0] + 1

    def periods(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(baseline, future) inclusive year ranges."""
        start, end = self.years
        if self.baseline is not None and self.future is not None:
            return parse_years(self.baseline), parse_years(self.future)
        if start <= AR6_BASELINE[0] and end >= AR6_FUTURE[1]:
            default = (AR6_BASELINE, AR6_FUTURE)
        else:
            span = max(1, min(10, self.n_years // 2))
            default = ((start, start + span - 1), (end - span + 1, end))
        base = parse_years(self.baseline) if self.baseline is not None else default[0]
        fut = parse_years(self.future) if self.future is not None else default[1]
        return base, fut


@dataclass(frozen=True)
class _Regular:
    """What ``landuse.check`` reads of a grid."""

    resolution: float


def from_mapping(values: dict[str, Any]) -> RunConfig:
    """A RunConfig from a mapping (YAML); unknown keys are refused by name."""
    known = {f.name for f in fields(RunConfig)}
    kw: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in known:
            raise RunConfigError(
                f"unknown key; known: {', '.join(sorted(known))}", field=key, rule="known_key"
            )
        kw[name] = value
    if "column" in kw:
        col = kw["column"]
        if not isinstance(col, dict):
            raise RunConfigError("expected a mapping", field="column", rule="type")
        col_fields = {f.name for f in fields(ColumnConfig)}
        bad = sorted(set(col) - col_fields)
        if bad:
            raise RunConfigError(f"unknown keys {bad}", field="column", rule="known_key")
        try:
            kw["column"] = ColumnConfig(**col)
        except (TypeError, ValueError) as exc:
            raise RunConfigError(str(exc), field="column", rule="valid") from None
    if "record_options" in kw:
        try:
            kw["record_options"] = RecordOptions.from_dict(kw["record_options"])
        except InvalidArgument as exc:
            raise RunConfigError(str(exc), field=exc.field or "record_options",
                                 rule=exc.rule or "valid") from None  # fmt: skip
    for key in ("years", "baseline", "future"):
        if key in kw and kw[key] is not None:
            kw[key] = parse_years(kw[key])
    if "experiments" in kw and isinstance(kw["experiments"], list):
        kw["experiments"] = tuple(kw["experiments"])
    return RunConfig(**kw)


def load_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RunConfigError("the file must hold a mapping", field=str(path), rule="type")
    return data
