"""``open_session`` keyword arguments -> :class:`~coupler.core.config.SessionConfig`.

Shared by the gRPC servicer (after decoding the request) and the in-process transport, so both
paths build sessions, and refuse bad ones, identically. No gRPC here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np

from coupler.assimilation import configio
from coupler.assimilation.settings import AssimilationConfig
from coupler.core.config import DEFAULT_DA_MEMBERS, GridSpec, SessionConfig
from coupler.errors import InvalidArgument


def parse_start(value: Any) -> Any:
    """A start time for SessionConfig: RFC 3339 strings with a UTC offset and aware datetimes
    are converted to UTC ``np.datetime64[s]``; naive strings (taken as UTC) and datetime64 pass
    through for the core to check (field ``start``)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return np.datetime64(value.replace(microsecond=0), "s")
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return text  # the core names field 'start' and the rule
        if parsed.tzinfo is not None:
            return parse_start(parsed)
        return text
    return value


def format_time(value: np.datetime64) -> str:
    """RFC 3339 UTC, seconds resolution: ``2001-06-01T00:00:00Z``."""
    return str(np.datetime_as_string(value, unit="s")) + "Z"


def session_config(
    *,
    lat: Any,
    lon: Any,
    start: Any,
    timestep: Any,
    outputs: Any,
    backend: str = "reference",
    land_cover: Any = "grass",
    members: int | None = None,
    run_id: str = "",
    rank: int = 0,
    area: Any = None,
    land_fraction: Any = None,
    grid_shape: Any = None,
    output_spread: bool = False,
    checkpoint_url: str | None = None,
    checkpoint_every: int = 0,
    record_url: str | None = None,
    assimilation: AssimilationConfig | Mapping[str, Any] | None = None,
) -> SessionConfig:
    """Build and validate a session config (raises InvalidArgument naming the field).
    ``assimilation``: an AssimilationConfig or its options dict
    (:mod:`coupler.assimilation.configio`; errors name ``assimilation.<key>``); None = off.
    ``members`` None: 1, or :data:`~coupler.core.config.DEFAULT_DA_MEMBERS` with
    assimilation."""
    da = assimilation_config(assimilation)
    if members is None:
        members = 1 if da is None else DEFAULT_DA_MEMBERS
    if grid_shape is not None:
        grid_shape = tuple(grid_shape)
        if len(grid_shape) == 0:
            grid_shape = None
    if isinstance(outputs, str):
        outputs = (outputs,)
    try:
        outputs = tuple(outputs)
    except TypeError:
        raise InvalidArgument(
            f"outputs: expected a list of names, got {outputs!r}", field="outputs", rule="type"
        ) from None
    grid = GridSpec(lat=lat, lon=lon, area=area, land_fraction=land_fraction, shape=grid_shape)
    return SessionConfig(
        grid=grid,
        start=parse_start(start),
        timestep=timestep,
        outputs=outputs,
        backend=backend or "reference",
        land_cover=land_cover,
        run_id=run_id,
        rank=rank,
        members=members,
        output_spread=output_spread,
        checkpoint_url=checkpoint_url or None,
        checkpoint_every=checkpoint_every,
        record_url=record_url or None,
        assimilation=da,
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
