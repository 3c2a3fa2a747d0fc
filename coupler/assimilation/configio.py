"""AssimilationConfig <-> a flat, JSON-compatible dict of options.

The same dict is what a session config stores (``SessionSpec.to_dict()["assimilation"]``,
so checkpoints and records keep it), what ``open_session(assimilation={...})`` accepts, and what
the wire's ``AssimilationOptions`` message carries (one field per key). Keys (defaults in
:class:`~coupler.assimilation.online.AssimilationConfig`):

- ``filter`` ("eakf" | "enkf" | "etkf" | "letkf"), ``inflation`` ("none" | "fixed" |
  "adaptive"), ``inflation_factor``, ``inflation_initial``, ``inflation_sd``,
  ``inflation_damping``, ``inflation_lower``, ``inflation_upper``, ``gross_error_k``,
  ``center_perturbations``, ``filter_seed``;
- ``perturbation``: {``pr``, ``rsds``, ``tas``, ``huss``, ``tau_hours``};
- ``parameters``: [{``name``, ``low``, ``high``, ``log``}], ``estimate_parameters``;
- ``fields``, ``half_width_km``, ``match_km``, ``keep_days``, ``keep_steps``, ``seed``,
  ``impact`` ({observation type: [column kinds]}), ``leaf_carbon_sd``,
  ``initial_leaf_carbon_sd``, ``observations_url``.

:func:`from_options` takes a partial dict (absent keys keep their defaults) and raises
InvalidArgument with ``field`` = ``assimilation.<key>`` (unknown keys: rule ``known``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from coupler.assimilation.config import (
    FilterConfig,
    FilterKind,
    InflationConfig,
    InflationKind,
    QualityControl,
)
from coupler.assimilation.settings import (
    AssimilationConfig,
    ForcingPerturbation,
    ParameterPerturbation,
    ParameterPrior,
)
from coupler.errors import InvalidArgument

PREFIX = "assimilation."
_INFLATION = {
    "inflation_factor": "factor",
    "inflation_initial": "initial",
    "inflation_sd": "sd",
    "inflation_damping": "damping",
    "inflation_lower": "lower",
    "inflation_upper": "upper",
}
_PLAIN = (
    "estimate_parameters",
    "half_width_km",
    "match_km",
    "keep_days",
    "keep_steps",
    "seed",
    "leaf_carbon_sd",
    "initial_leaf_carbon_sd",
    "observations_url",
)
KEYS = frozenset(
    {
        "filter",
        "inflation",
        *_INFLATION,
        "gross_error_k",
        "center_perturbations",
        "filter_seed",
        "perturbation",
        "parameters",
        "fields",
        "impact",
        *_PLAIN,
    }
)


def to_options(cfg: AssimilationConfig) -> dict[str, Any]:
    """Every setting of ``cfg`` as a JSON-compatible dict (see the module docstring)."""
    f, inf = cfg.filter, cfg.filter.inflation
    out: dict[str, Any] = {
        "filter": f.kind.value,
        "inflation": inf.kind.value,
        **{key: float(getattr(inf, attr)) for key, attr in _INFLATION.items()},
        "gross_error_k": float(f.qc.gross_error_k),
        "center_perturbations": bool(f.center_perturbations),
        "filter_seed": int(f.seed),
        "perturbation": {
            k.name: float(getattr(cfg.perturbation, k.name))
            for k in dataclasses.fields(ForcingPerturbation)
        },
        "parameters": [
            {"name": p.name, "low": float(p.low), "high": float(p.high), "log": bool(p.log)}
            for p in cfg.parameters.priors
        ],
        "fields": list(cfg.fields),
        "impact": {var: list(kinds) for var, kinds in cfg.impact},
    }
    for key in _PLAIN:
        out[key] = getattr(cfg, key)
    return out


def _bad(key: str, rule: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{PREFIX}{key}: {message}", field=PREFIX + key, rule=rule)


def _enum(key: str, kind: Any, value: Any) -> Any:
    try:
        return kind(str(value).lower())
    except ValueError:
        known = ", ".join(k.value for k in kind)
        raise _bad(key, "known", f"{value!r} is not one of {known}") from None


def from_options(options: Mapping[str, Any]) -> AssimilationConfig:
    """An AssimilationConfig from a (partial) options dict; errors name ``assimilation.<key>``."""
    if not isinstance(options, Mapping):
        raise _bad("options", "type", f"expected a mapping, got {type(options).__name__}")
    unknown = sorted(set(options) - KEYS)
    if unknown:
        raise _bad(unknown[0], "known", f"unknown option (known: {', '.join(sorted(KEYS))})")
    base = AssimilationConfig()
    o = dict(options)
    try:
        infl = base.filter.inflation
        inflation = InflationConfig(
            kind=_enum("inflation", InflationKind, o.get("inflation", infl.kind.value)),
            **{attr: o.get(key, getattr(infl, attr)) for key, attr in _INFLATION.items()},
        )
        filt = FilterConfig(
            kind=_enum("filter", FilterKind, o.get("filter", base.filter.kind.value)),
            inflation=inflation,
            qc=QualityControl(o.get("gross_error_k", base.filter.qc.gross_error_k)),
            center_perturbations=bool(
                o.get("center_perturbations", base.filter.center_perturbations)
            ),
            seed=o.get("filter_seed", base.filter.seed),
        )
        pert = o.get("perturbation", {})
        if not isinstance(pert, Mapping):
            raise _bad("perturbation", "type", "expected a mapping of standard deviations")
        names = {k.name for k in dataclasses.fields(ForcingPerturbation)}
        if set(pert) - names:
            raise _bad("perturbation", "known", f"unknown {sorted(set(pert) - names)}")
        priors = tuple(_prior(p) for p in o.get("parameters", ()))
        impact = o.get("impact")
        kwargs: dict[str, Any] = {k: o[k] for k in _PLAIN if k in o}
        if "fields" in o:
            kwargs["fields"] = tuple(o["fields"])
        if impact is not None:
            if not isinstance(impact, Mapping):
                raise _bad("impact", "type", "expected {observation type: [column kinds]}")
            kwargs["impact"] = tuple((str(v), tuple(k)) for v, k in impact.items())
        return AssimilationConfig(
            filter=filt,
            perturbation=ForcingPerturbation(**{**to_options(base)["perturbation"], **pert}),
            parameters=ParameterPerturbation(priors),
            **kwargs,
        )
    except InvalidArgument as exc:
        field = exc.field or "options"
        if field.startswith(PREFIX):
            raise
        raise InvalidArgument(
            f"{PREFIX}{exc}", field=PREFIX + field, rule=exc.rule or "invalid"
        ) from None
    except (TypeError, ValueError) as exc:
        raise _bad("options", "type", str(exc)) from None


def _prior(p: Any) -> ParameterPrior:
    if isinstance(p, ParameterPrior):
        return p
    if not isinstance(p, Mapping) or not {"name", "low", "high"} <= set(p):
        raise _bad("parameters", "type", f"expected {{name, low, high[, log]}}, got {p!r}")
    return ParameterPrior(str(p["name"]), float(p["low"]), float(p["high"]), bool(p.get("log")))
