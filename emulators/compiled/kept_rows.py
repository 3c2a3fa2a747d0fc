"""The rows of the recurrent state an emulator backend wrote last, kept for its next step.

A step reads the recurrent state (``lstm_h``, ``lstm_c``: most of the state's bytes) of its
rows out of the dense (member·cell·tile, width) tensors and writes the new rows into new dense
tensors (``row_step.dense_rows``). A session hands the state it got back unchanged, so the rows
the next step gathers are the ones this step had in hand. :class:`KeptRows` keeps them with the
dense tensor they went into; the next step takes them instead of gathering again when, and only
when, it is handed that very tensor object, unmodified since (torch's version counter, which
every in-place operation through torch advances) and for the same rows (the same ``Rows``
object: the cover it was made for). Then they are every bit what the gather would read. Any
other state (a copy, a checkpoint restored, a remapped or assimilated state, another
session's) is gathered as before.

Why: at 10 000 cells the gather reads the active rows (2 × 3.9 MB) out of 2 × 15 MB of dense
state that is no longer in cache; taking the kept rows instead cut the step's gather phase from
3.1 to 1.9 ms in an interleaved A/B (docs/emulators.md, "Fewer passes over the state"). Cost:
the last step's rows stay referenced (the new state's active rows once more: 2 × 3.9 MB at
10 000 cells), one entry per tensor name, so a backend shared by several sessions keeps the last
one's only (the others gather, as before). Data changed behind torch's back (writing through a
NumPy view of the tensor) is not seen; nothing in the service does that to the recurrent state.
"""

from __future__ import annotations

import threading
import weakref

import torch

Tensor = torch.Tensor


class KeptRows:
    """Per tensor name: the dense tensor (weakly), its version counter, the rows object and the
    rows written into it."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[weakref.ref[Tensor], int, object, Tensor]] = {}
        self._lock = threading.Lock()

    def keep(self, name: str, dense: Tensor, rows_key: object, rows: Tensor) -> None:
        """``rows`` (row, width) are what the step wrote into ``dense`` at the rows of
        ``rows_key``; ``dense`` is the very tensor object the new state holds. A tensor made in
        inference mode has no version counter: nothing is kept."""
        if dense.is_inference():
            return
        with self._lock:
            self._kept[name] = (weakref.ref(dense), dense._version, rows_key, rows)

    def rows(self, name: str, dense: Tensor, rows_key: object) -> Tensor | None:
        """The kept rows of ``name`` if ``dense`` is the tensor they were written into, not
        modified since, and ``rows_key`` the same rows; else None (gather them)."""
        with self._lock:
            entry = self._kept.get(name)
        if entry is None or dense.is_inference():
            return None
        ref, version, key, rows = entry
        if ref() is dense and dense._version == version and key is rows_key:
            return rows
        return None

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
