"""What a session's ensemble and assimilation are configured with: frozen dataclasses that
validate themselves, and the tables they are checked against. No torch, so the session spec and
the clients can hold an :class:`AssimilationConfig` without importing the filters.

Every violation raises :class:`~coupler.errors.InvalidArgument` naming the field and the rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from coupler.assimilation.config import FilterConfig, FilterKind, InflationConfig, InflationKind
from coupler.errors import InvalidArgument
from emulators import landcover as P
from emulators.constants import SECONDS_PER_DAY

#: observable variable -> window length in s (0: instantaneous at the step containing the time)
WINDOWS: Mapping[str, int] = {
    "lai": 8 * SECONDS_PER_DAY,
    "hfls": SECONDS_PER_DAY,
    "hfss": SECONDS_PER_DAY,
    "ts": 0,
}
#: the state fields an analysis can update (see ``landstate``)
STATE_FIELDS = ("lai", "w", "ts", "tsoil")
#: which kinds of state columns each observation type updates ("param": estimated parameters)
DEFAULT_IMPACT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lai", ("lai", "param")),
    ("hfls", ("w", "ts", "tsoil", "param")),
    ("hfss", ("w", "ts", "tsoil", "param")),
    ("ts", ("ts", "tsoil")),
)
KINDS = ("lai", "w", "ts", "tsoil", "param", "observed")


#: variable -> True for multiplicative (lognormal), False for additive perturbations
KIND = {"pr": True, "rsds": True, "tas": False, "huss": False}


@dataclass(frozen=True)
class ForcingPerturbation:
    """Standard deviations of the perturbations: ``pr`` and ``rsds`` of the log of their
    multiplicative factors (1), ``tas`` in K, ``huss`` in kg kg-1; ``tau_hours`` the AR(1)
    e-folding time (h). Zero switches a variable off."""

    pr: float = 0.5
    rsds: float = 0.15
    tas: float = 1.0
    huss: float = 5e-4
    tau_hours: float = 24.0

    def __post_init__(self) -> None:
        for name in (*KIND, "tau_hours"):
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
                or v < 0
            ):
                raise InvalidArgument(
                    f"perturbation.{name}: must be a finite number >= 0, got {v!r}",
                    field=f"perturbation.{name}",
                    rule="non_negative",
                )
        if self.tau_hours <= 0:
            raise InvalidArgument(
                "perturbation.tau_hours: must be > 0",
                field="perturbation.tau_hours",
                rule="positive",
            )

    def sigma(self, name: str) -> float:
        return float(getattr(self, name))


@dataclass(frozen=True)
class ParameterPrior:
    """A parameter to perturb (and possibly estimate): uniform in [low, high] (log-uniform with
    ``log``), inside the published range of ``name`` (``emulators.parameters``)."""

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if self.name not in P.PARAMETER_NAMES:
            raise InvalidArgument(
                f"parameters: unknown parameter {self.name!r}", field="parameters", rule="known"
            )
        spec = P.PARAMETERS[P.PARAMETER_NAMES.index(self.name)]
        if not spec.low <= self.low < self.high <= spec.high:
            raise InvalidArgument(
                f"parameters: {self.name} prior [{self.low}, {self.high}] must be an increasing "
                f"interval inside [{spec.low}, {spec.high}]",
                field="parameters",
                rule="within_range",
            )
        if self.log and self.low <= 0:
            raise InvalidArgument(
                f"parameters: {self.name} log prior needs low > 0", field="parameters", rule="log"
            )

    @property
    def index(self) -> int:
        return P.PARAMETER_NAMES.index(self.name)


@dataclass(frozen=True)
class ParameterPerturbation:
    priors: tuple[ParameterPrior, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class AssimilationConfig:
    """Ensemble and assimilation settings of a domain.

    ``fields``: assimilated state fields (see ``landstate``). ``parameters``: perturbed
    parameters; with ``estimate_parameters`` they are also updated (state augmentation).
    ``half_width_km``: Gaspari–Cohn half-width of the great-circle localisation. ``match_km``:
    how far an observation may lie from its cell. ``keep_days``/``keep_steps``: observation
    history. ``seed``: seeds every random draw (forcing noise, parameters, EnKF). ``impact``:
    per observation type, the kinds of state column it may update (variable localisation, as
    DART's per-kind localisation; the observed ensembles themselves are always updated).
    ``leaf_carbon_sd``: daily lognormal model-error perturbation of leaf carbon (0: none).
    ``initial_leaf_carbon_sd``: lognormal spread of the initial leaf carbon per member and cell
    (a session's initial LAI uncertainty; 0: none). ``observations_url``: an fsspec URL of a
    Zarr observation file whose observations a session queues when their windows complete
    (see ``coupler.core.obsfile``); None: observations arrive only through Assimilate."""

    filter: FilterConfig = field(
        default_factory=lambda: FilterConfig(
            kind=FilterKind.EAKF,
            inflation=InflationConfig(kind=InflationKind.ADAPTIVE, sd=0.6, upper=3.0),
        )
    )
    perturbation: ForcingPerturbation = field(default_factory=ForcingPerturbation)
    parameters: ParameterPerturbation = field(default_factory=ParameterPerturbation)
    estimate_parameters: bool = True
    fields: tuple[str, ...] = ("lai", "w", "ts")
    half_width_km: float = 50.0
    match_km: float = 50.0
    keep_days: int = 9
    keep_steps: int = 48
    seed: int = 0
    impact: tuple[tuple[str, tuple[str, ...]], ...] = DEFAULT_IMPACT
    leaf_carbon_sd: float = 0.0
    initial_leaf_carbon_sd: float = 0.0
    observations_url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.filter, FilterConfig):
            raise InvalidArgument("filter: must be a FilterConfig", field="filter", rule="type")
        if not isinstance(self.perturbation, ForcingPerturbation):
            raise InvalidArgument(
                "perturbation: must be a ForcingPerturbation", field="perturbation", rule="type"
            )
        if not isinstance(self.parameters, ParameterPerturbation):
            raise InvalidArgument(
                "parameters: must be a ParameterPerturbation", field="parameters", rule="type"
            )
        bad_fields = [f for f in self.fields if f not in STATE_FIELDS]
        if isinstance(self.fields, str) or not self.fields or bad_fields:
            raise InvalidArgument(
                f"fields: {self.fields!r} (known: {', '.join(STATE_FIELDS)})",
                field="fields",
                rule="known",
            )
        for name, low in (("keep_days", 8), ("keep_steps", 1), ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise InvalidArgument(
                    f"{name}: must be an integer >= {low}, got {v!r}", field=name, rule="int_range"
                )
        url = self.observations_url
        if url is not None and (not isinstance(url, str) or not url.strip()):
            raise InvalidArgument(
                f"observations_url: must be a non-empty URL or unset, got {url!r}",
                field="observations_url",
                rule="url",
            )
        for name in ("half_width_km", "match_km"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise InvalidArgument(
                    f"{name}: must be > 0, got {v!r}", field=name, rule="positive"
                )
        for name in ("leaf_carbon_sd", "initial_leaf_carbon_sd"):
            sd = getattr(self, name)
            if not (isinstance(sd, int | float) and math.isfinite(sd) and sd >= 0):
                raise InvalidArgument(f"{name}: must be >= 0, got {sd!r}", field=name, rule="range")
        for var, kinds in self.impact:
            bad = [k for k in kinds if k not in KINDS]
            if var not in WINDOWS or bad:
                raise InvalidArgument(
                    f"impact: {var!r} -> {kinds} (observable: {', '.join(WINDOWS)}; kinds: "
                    f"{', '.join(KINDS)})",
                    field="impact",
                    rule="known",
                )
