"""The CPU's float32 roofline and the flux network's place under it, measured in the emulator
bench's own run (``make bench-emulators``): the peak of a large float32 matmul, the bandwidth of
a large copy, the network's FLOPs per row (counted from its config, checked against torch's FLOP
counter), and the network call alone on rows of a real step at several batch sizes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from emulators.manifest import Manifest

Tensor = torch.Tensor


def _best(fn: Callable[[], object], repeats: int) -> float:
    """The shortest of ``repeats`` timed calls after one untimed (the machine's best: the peak)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_matmul(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """float32 ``torch.mm`` of two n × n matrices at torch's current threads: 2n³ FLOPs."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g)
    b = torch.randn(n, n, generator=g)
    seconds = _best(lambda: torch.mm(a, b), repeats)
    return {"n": n, "seconds": seconds, "gflops": 2 * n**3 / seconds / 1e9}


def copy_bandwidth(mib: int = 256, repeats: int = 5) -> dict[str, float]:
    """A float32 copy of ``mib`` MiB into a second buffer: bytes read + written per second."""
    src = torch.ones(mib * 2**20 // 4)
    dst = torch.empty_like(src)
    seconds = _best(lambda: dst.copy_(src), repeats)
    return {"mib": mib, "seconds": seconds, "gb_per_s": 2 * src.numel() * 4 / seconds / 1e9}


def flux_lstm_flops(config: dict[str, Any]) -> dict[str, int]:
    """FLOPs per row and step of ``flux_lstm`` from its config (F features, H hidden, T tasks,
    K head width; with ``physics`` F + the derived Penman–Monteith inputs), multiply-add = 2:
    the input projection and task gates x·W (F → 4H + T·H),
    the recurrent projection h·U (H → 4H), the task heads' first layer (T × (H → K)); these
    matrix products are what torch's FLOP counter counts. The elementwise work (normalisation,
    gate nonlinearities, cell update, head output layer T × K) is listed apart."""
    from emulators.compiled.features import N_DERIVED_FLUX_FEATURES

    f, h = int(config["n_features"]), int(config["hidden"])
    t, k = int(config["n_outputs"]), int(config["head_hidden"])
    f_in = f + N_DERIVED_FLUX_FEATURES * bool(config.get("physics", False))  # derived inputs
    gemm = {"input": 2 * f_in * (4 * h + t * h), "recurrent": 2 * h * 4 * h, "heads": 2 * t * h * k}
    elementwise = 2 * f + 4 * h + 3 * h + t * h + 2 * t * k + 2 * t  # adds/muls, no σ/tanh
    return {**gemm, "gemm": sum(gemm.values()), "elementwise": elementwise}


def counted_flops(manifest: Manifest, rows: int = 64) -> float:
    """FLOPs per row of the eager network of ``manifest`` by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    import emulators.nets.flux  # noqa: F401  (registers the flux architectures)
    from emulators.nets import registry

    net = registry.build(manifest.architecture, manifest.config).eval()
    f, h = int(manifest.config["n_features"]), int(manifest.config["hidden"])
    x, state = torch.zeros(rows, f), torch.zeros(rows, h)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(x, state, state)
    return counter.get_total_flops() / rows


def capture_rows(backend: Any, step: Callable[[], object]) -> tuple[Tensor, Tensor, Tensor]:
    """The (x, h, c) the flux network receives in one ``step()`` of ``backend`` (all blocks)."""
    seen: list[tuple[Tensor, Tensor, Tensor]] = []
    original = backend._run_flux

    def record(x: Tensor, h: Tensor, c: Tensor, net: Any = None) -> Any:
        seen.append((x.clone(), h.clone(), c.clone()))
        return original(x, h, c, net)

    backend._run_flux = record
    try:
        step()
    finally:
        del backend._run_flux
    return tuple(torch.cat([s[i] for s in seen]) for i in range(3))  # type: ignore[return-value]


def time_network(net: Callable[..., Any], rows: tuple[Tensor, Tensor, Tensor], batch: int,
                 repeats: int) -> float:  # fmt: skip
    """Seconds of the fastest of ``repeats`` passes of ``net`` over all ``rows`` in calls of
    ``batch`` rows, after three untimed passes (TorchScript's profiling executor optimises over
    its first calls): the best the machine gave, as the matmul peak is. The state is not fed
    back: every pass sees the same inputs."""
    x, h, c = rows
    starts = range(0, x.shape[0], batch)

    def one_pass() -> None:
        for s in starts:
            net(x[s : s + batch], h[s : s + batch], c[s : s + batch])

    for _ in range(2):
        one_pass()
    return _best(one_pass, repeats)


def time_matmuls(config: dict[str, Any], rows: tuple[Tensor, Tensor, Tensor], batch: int,
                 repeats: int) -> float:  # fmt: skip
    """Seconds of the fastest pass of ``flux_lstm``'s matrix products alone (x·W, h·U and the
    heads' batched product, weights of the network's shapes) over ``rows`` in calls of
    ``batch`` rows: the part of the network that can run near the matmul peak."""
    f, h = int(config["n_features"]), int(config["hidden"])
    t, k = int(config["n_outputs"]), int(config["head_hidden"])
    g = torch.Generator().manual_seed(0)
    wx, bx = torch.randn(4 * h + t * h, f, generator=g), torch.zeros(4 * h + t * h)
    wh = torch.randn(4 * h, h, generator=g)
    w1 = torch.randn(t, h, k, generator=g)
    x, state, _ = rows
    shared = torch.randn(t, batch, h, generator=g)
    starts = range(0, x.shape[0], batch)

    def one_pass() -> None:
        for s in starts:
            xb, hb = x[s : s + batch], state[s : s + batch]
            torch.nn.functional.linear(xb, wx, bx)
            torch.nn.functional.linear(hb, wh)
            torch.bmm(shared[:, : xb.shape[0]], w1)

    for _ in range(2):
        one_pass()
    return _best(one_pass, repeats)
