"""Service-wide configuration of the core: frozen dataclasses that validate themselves (a
session's own configuration is :class:`coupler.spec.SessionSpec`)."""

from __future__ import annotations

from dataclasses import dataclass

from coupler.errors import InvalidArgument


def _bad(field_name: str, rule: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{field_name}: {message}", field=field_name, rule=rule)


@dataclass(frozen=True)
class Limits:
    """Service-wide limits; exceeding one is ResourceExhausted."""

    max_sessions: int = 64
    max_cells_per_session: int = 1_048_576
    max_members: int = 128

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_cells_per_session", "max_members"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _bad(name, "positive_int", f"must be an integer >= 1, got {value!r}")
