"""Suite-wide settings.

torch runs with one intra-op thread in the tests: the land step's tensors are small enough that
a second OpenMP thread buys little on 2 cores, and on a loaded machine it made every elementwise op
up to 20x slower (threads spinning against other processes; measured 2026-11-23: 0.53 s vs 0.025 s
per 4096-cell reference step). One thread also keeps reductions bit-reproducible between the
main thread and gRPC worker threads.

``tests/triton`` (a real Triton server from build/triton-venv) is collected only under
``LANDCOUPLER_TRITON_TESTS=1``, which ``make test-triton`` sets after building that venv; there a
missing venv fails the run. Tests marked ``cuda`` are skipped, saying why, without a CUDA device.
"""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)

collect_ignore = [] if os.environ.get("LANDCOUPLER_TRITON_TESTS") == "1" else ["triton"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped, saying so, without)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is false here")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
