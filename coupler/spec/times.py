"""Times on the wire and in specs: RFC 3339 UTC strings <-> ``np.datetime64[s]``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np


def parse_start(value: Any) -> Any:
    """A start time for SessionSpec: RFC 3339 strings with a UTC offset and aware datetimes
    are converted to UTC ``np.datetime64[s]``; naive strings (taken as UTC) and datetime64 pass
    through for the spec to check (field ``start``)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return np.datetime64(value.replace(microsecond=0), "s")
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            return text  # the spec names field 'start' and the rule
        if parsed.tzinfo is not None:
            return parse_start(parsed)
        return text
    return value


def format_time(value: np.datetime64) -> str:
    """RFC 3339 UTC, seconds resolution: ``2001-06-01T00:00:00Z``."""
    return str(np.datetime_as_string(value, unit="s")) + "Z"


def rfc3339(value: Any) -> str:
    """An observation time as sent on the wire: strings as given, datetimes as RFC 3339 UTC."""
    if isinstance(value, str):
        return value
    return format_time(np.datetime64(value, "s"))
