"""The error of the replay ring: :class:`RecordError`, a record that cannot be read or replayed."""

from __future__ import annotations

from coupler.errors import InvalidArgument


class RecordError(InvalidArgument):
    """A record that cannot be read or replayed; ``rule`` names why (``coupler.replay.source``)."""

    def __init__(self, url: str, rule: str, message: str) -> None:
        super().__init__(f"record {url}: {message}", field="record", rule=rule)
