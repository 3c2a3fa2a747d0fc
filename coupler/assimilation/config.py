"""Configuration of one ensemble analysis: small frozen dataclasses that validate themselves.

Every violation raises :class:`~coupler.errors.InvalidArgument` whose ``field`` names the
configuration field and whose ``rule`` names the broken rule. Variants are chosen by enums, never
by matching substrings of names.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from coupler.errors import InvalidArgument


class FilterKind(enum.Enum):
    """Which analysis scheme."""

    EAKF = "eakf"  # serial ensemble adjustment Kalman filter (Anderson 2001, 2003; DART)
    ENKF = "enkf"  # stochastic, perturbed-observation EnKF (Burgers et al. 1998)
    ETKF = "etkf"  # symmetric square-root ETKF (Bishop et al. 2001; Hunt et al. 2007)
    LETKF = "letkf"  # local ETKF with R-localisation (Hunt et al. 2007)


class InflationKind(enum.Enum):
    """How the prior ensemble anomalies are inflated before each analysis."""

    NONE = "none"
    FIXED = "fixed"  # one multiplicative factor on the anomalies
    ADAPTIVE = "adaptive"  # Anderson (2009) spatially and temporally varying, per state column


def _bad(field_name: str, rule: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{field_name}: {message}", field=field_name, rule=rule)


def _finite(field_name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(field_name, "finite", f"must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class InflationConfig:
    """Multiplicative prior inflation.

    FIXED: anomalies are multiplied by ``factor`` (DAPPER's ``infl``; variance grows by
    ``factor**2``). ADAPTIVE (Anderson 2009, Tellus A 61:72-83): every state column carries a
    variance inflation ``lambda`` with a Gaussian prior (mean = last value, standard deviation
    ``sd``), updated from each observation's innovation; ``initial`` is its starting value,
    ``damping`` relaxes it towards 1 every cycle (``lambda <- 1 + damping (lambda - 1)``; DART's
    ``inf_damping``), and it is kept within [``lower``, ``upper``]. Anomalies are multiplied by
    ``sqrt(lambda)``.
    """

    kind: InflationKind = InflationKind.NONE
    factor: float = 1.0
    initial: float = 1.0
    sd: float = 0.1
    damping: float = 1.0
    lower: float = 1.0
    upper: float = 100.0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, InflationKind):
            raise _bad("inflation.kind", "enum", f"must be an InflationKind, got {self.kind!r}")
        factor = _finite("inflation.factor", self.factor)
        if factor < 1.0:
            raise _bad("inflation.factor", "at_least_one", f"must be >= 1, got {factor}")
        sd = _finite("inflation.sd", self.sd)
        if sd <= 0.0:
            raise _bad("inflation.sd", "positive", f"must be > 0, got {sd}")
        damping = _finite("inflation.damping", self.damping)
        if not 0.0 <= damping <= 1.0:
            raise _bad("inflation.damping", "unit_interval", f"must lie in [0, 1], got {damping}")
        lower = _finite("inflation.lower", self.lower)
        upper = _finite("inflation.upper", self.upper)
        if not 0.0 < lower <= upper:
            raise _bad(
                "inflation.lower", "ordered", f"need 0 < lower <= upper, got {lower}, {upper}"
            )
        initial = _finite("inflation.initial", self.initial)
        if not lower <= initial <= upper:
            raise _bad(
                "inflation.initial", "within_bounds", f"{initial} outside [{lower}, {upper}]"
            )


@dataclass(frozen=True)
class QualityControl:
    """Observation screening before an analysis.

    An observation is rejected (and counted) when any member's forward-operator value is
    non-finite, when the prior observed ensemble has zero spread, or when
    ``|y - mean(hE)| > gross_error_k * sqrt(var(hE) + R)`` (DART's ``outlier_threshold``).
    ``gross_error_k = inf`` disables the gross-error check.
    """

    gross_error_k: float = 4.0

    def __post_init__(self) -> None:
        k = self.gross_error_k
        if isinstance(k, bool) or not isinstance(k, int | float) or math.isnan(k) or k <= 0:
            raise _bad("qc.gross_error_k", "positive", f"must be > 0 (inf allowed), got {k!r}")


@dataclass(frozen=True)
class FilterConfig:
    """One analysis scheme and its settings.

    ``kind``: the scheme. ``inflation``: prior inflation. ``qc``: observation screening.
    ``center_perturbations`` (ENKF only): remove the ensemble mean of the observation
    perturbations so they add no mean error (as DAPPER's ``PertObs``). ``seed`` (ENKF only): seed
    of the perturbation generator when none is passed to the analysis.
    """

    kind: FilterKind = FilterKind.EAKF
    inflation: InflationConfig = InflationConfig()
    qc: QualityControl = QualityControl()
    center_perturbations: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FilterKind):
            raise _bad("filter.kind", "enum", f"must be a FilterKind, got {self.kind!r}")
        if not isinstance(self.inflation, InflationConfig):
            raise _bad("filter.inflation", "type", "must be an InflationConfig")
        if not isinstance(self.qc, QualityControl):
            raise _bad("filter.qc", "type", "must be a QualityControl")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise _bad("filter.seed", "non_negative_int", f"must be an int >= 0, got {self.seed!r}")
