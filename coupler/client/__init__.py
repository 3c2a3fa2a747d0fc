"""What an atmospheric model's Python driver imports.

    from coupler.client import CouplerClient, CouplerRpcError, SessionSpec

    with CouplerClient("127.0.0.1:50051") as client:
        with client.open_session(lat=lat, lon=lon, start="2001-06-01T00:00:00", timestep=3600,
                                 outputs=["hfls", "hfss"], backend="reference") as session:
            reply = session.step(0, {"tas": tas, "huss": huss, ...})

``CouplerClient`` talks gRPC (:mod:`coupler.client.remote`) and imports neither torch nor the
service's core; ``InProcessClient(manager)`` (:mod:`coupler.client.inprocess`, imported on first
use) implements the same :class:`Client` Protocol and calls a local ``SessionManager`` directly;
``local_client("grpc" | "shm" | "inprocess")`` starts a service of this process for either
(``shm``: the gRPC client with its arrays through shared memory). Both raise
:class:`CouplerRpcError` (``.code()``, ``.details()``, ``.field``, ``.rule``) on refusals. A
driver exchanging multi-MB steps should call :func:`tune_allocator` once at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coupler.assimilation.settings import AssimilationConfig
from coupler.client.common import LandCoverUpdate
from coupler.client.local import local_client
from coupler.client.protocol import Client, Session
from coupler.client.remote import CouplerClient, RemoteSession
from coupler.spec import GridSpec, ObservationBatch, SessionSpec
from coupler.wire.allocator import tune_allocator
from coupler.wire.fields import CodecSpec
from coupler.wire.status import CouplerRpcError

if TYPE_CHECKING:
    from coupler.client.inprocess import InProcessClient, InProcessSession

_LAZY = {"InProcessClient", "InProcessSession"}


def __getattr__(name: str) -> Any:
    """The in-process client on first use (it imports the core and torch)."""
    if name in _LAZY:
        from coupler.client import inprocess

        return getattr(inprocess, name)
    raise AttributeError(f"module 'coupler.client' has no attribute {name!r}")


__all__ = [
    "AssimilationConfig",
    "Client",
    "CodecSpec",
    "CouplerClient",
    "CouplerRpcError",
    "GridSpec",
    "InProcessClient",
    "InProcessSession",
    "LandCoverUpdate",
    "ObservationBatch",
    "RemoteSession",
    "Session",
    "SessionSpec",
    "local_client",
    "tune_allocator",
]
