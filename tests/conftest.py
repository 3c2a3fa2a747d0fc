"""Suite-wide settings.

torch runs with one intra-op thread in the tests: the land step's tensors are small enough that
a second OpenMP thread buys little on 2 cores, and on a loaded machine it made every elementwise op
up to 20x slower (threads spinning against other processes; measured 2026-11-23: 0.53 s vs 0.025 s
per 4096-cell reference step). One thread also keeps reductions bit-reproducible between the
main thread and gRPC worker threads.
"""

from __future__ import annotations

import torch

torch.set_num_threads(1)
