"""Shared setup of the emulator tests: the contract helpers of ``tests/contracts`` importable as
``contracts.backend_contract`` (tests/ on sys.path; this directory is not a package because its
name would shadow the ``emulators`` package)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
