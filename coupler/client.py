"""What an atmospheric model's Python driver imports.

    from coupler.client import CouplerClient, CouplerRpcError

    with CouplerClient("127.0.0.1:50051") as client:
        with client.open_session(lat=lat, lon=lon, start="2001-06-01T00:00:00", timestep=3600,
                                 outputs=["hfls", "hfss"], backend="reference") as session:
            reply = session.step(0, {"tas": tas, "huss": huss, ...})

``CouplerClient`` talks gRPC (:mod:`coupler.wire.client`); ``InProcessClient(manager)`` has the
same interface and calls a local ``SessionManager`` directly (:mod:`coupler.transport`). Both
raise :class:`CouplerRpcError` (``.code()``, ``.details()``, ``.field``, ``.rule``) on refusals.
A driver exchanging multi-MB steps should call :func:`tune_allocator` once at start-up.
"""

from __future__ import annotations

from coupler.assimilation.settings import AssimilationConfig
from coupler.core.observations import ObservationBatch
from coupler.transport import InProcessClient, InProcessSession
from coupler.wire.allocator import tune_allocator
from coupler.wire.client import CouplerClient, RemoteSession
from coupler.wire.fields import CodecSpec
from coupler.wire.status import CouplerRpcError

__all__ = [
    "AssimilationConfig",
    "CodecSpec",
    "CouplerClient",
    "CouplerRpcError",
    "InProcessClient",
    "InProcessSession",
    "ObservationBatch",
    "RemoteSession",
    "tune_allocator",
]
