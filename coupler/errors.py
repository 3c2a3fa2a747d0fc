"""Domain errors of the coupler: the bottom ring, which every other ring may raise.

The wire layer maps each class to one gRPC status code in one place (``coupler.wire.status``);
nothing below the wire knows about gRPC."""

from __future__ import annotations

from typing import Any


class CouplerError(Exception):
    """Base class. ``field`` and ``rule`` name what was wrong when it concerns an input."""

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as built (class, message and every attribute: ``field``, ``rule``, ...), so
        an error raised in a worker process arrives whole (subclasses may take other
        constructor arguments)."""
        return (_rebuild, (type(self), self.args), dict(self.__dict__))


def _rebuild(cls: type[CouplerError], args: tuple[Any, ...]) -> CouplerError:
    exc = cls.__new__(cls)
    exc.args = args
    return exc


class InvalidArgument(CouplerError):
    """Malformed input (unknown field, wrong units/dtype/shape, non-finite, out of range)."""


class FailedPrecondition(CouplerError):
    """Valid input at the wrong moment (out-of-order step index, closed session)."""


class NotFound(CouplerError):
    """No such session (or checkpoint)."""


class ResourceExhausted(CouplerError):
    """A configured limit: sessions per server, cells per session, message size."""


class PermissionDenied(CouplerError):
    """The caller does not own the session."""


class Unauthenticated(CouplerError):
    """No valid credentials."""
