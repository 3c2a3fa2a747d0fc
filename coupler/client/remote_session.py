"""One open session of the gRPC client (:class:`RemoteSession`, from
:meth:`coupler.client.remote.CouplerClient.open_session`): steps (unary, over the Exchange
stream, or through a shared-memory segment), checkpoints, land-cover updates and observations.
Steps are retried on UNAVAILABLE (and on a stream CANCELLED) with :func:`backoff`: safe, because
a resent index returns the stored reply without advancing."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.client.common import LandCoverUpdate
from coupler.client.exchange import Exchange
from coupler.client.shared import SharedChannel
from coupler.client.stepmsgs import CodecArg, StepMessages, stated_units
from coupler.spec import ObservationBatch
from coupler.spec.times import rfc3339
from coupler.wire import encoded as E
from coupler.wire import fields as F
from coupler.wire.status import CouplerRpcError

if TYPE_CHECKING:
    from coupler.client.remote import CouplerClient

MiB = 1 << 20
#: Steps with at least this many payload bytes go on Exchange as one frame per field.
DEFAULT_SPLIT_BYTES = 4 * MiB


def backoff(first: float, attempt: int) -> None:
    """Sleep before retry ``attempt`` (0, 1, ...): ``first`` s doubled per attempt, jittered
    by a factor in [0.5, 1.5)."""
    time.sleep(first * (2**attempt) * (0.5 + random.random()))


def transient(err: CouplerRpcError, stream: bool = False) -> bool:
    """Worth resending (safe for steps: a resent index returns the stored reply): UNAVAILABLE,
    and on a stream also CANCELLED, which only the server causes there (shutdown drain; the
    client's own timeout is reported as DEADLINE_EXCEEDED)."""
    codes = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    return err.code() in (codes if stream else codes[:1])


class RemoteSession:
    """One open session on a server (from :meth:`CouplerClient.open_session`)."""

    def __init__(
        self,
        client: CouplerClient,
        opened: pb.OpenSessionReply,
        *,
        codec: CodecArg = None,
        stream: bool = False,
        split_bytes: int = DEFAULT_SPLIT_BYTES,
        shared_memory: bool = False,
        reply_dtype: int = 0,
    ) -> None:
        self.client = client
        self.id: str = opened.session_id
        self.next_index: int = int(opened.next_index)
        self.outputs: tuple[str, ...] = tuple(opened.outputs)
        self.cells: int = int(opened.cells)
        self.members: int = int(opened.members)
        self.start: str = opened.start_rfc3339
        self.timestep: int = int(opened.timestep)
        self.backend: str = opened.backend
        self.stream = stream
        self.split_bytes = split_bytes
        self.last_time: str | None = None
        self._messages = StepMessages(self.id, codec, reply_dtype)
        self._exchange: Exchange | None = None
        self._shared = SharedChannel(self.id, self.outputs, self.cells) if shared_memory else None
        self._closed = False

    @property
    def codec(self) -> CodecArg:
        """The request codec: one spec, or one per field."""
        return self._messages.codec

    @property
    def reply_dtype(self) -> int:
        """The proto DType asked for the replies (0: unset, float64)."""
        return self._messages.reply_dtype

    def step(
        self, index: int, fields: Mapping[str, Any], units: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        """Send step ``index``'s forcing ((cell,) arrays by name) and return the outputs by
        name. ``units`` (name -> UDUNITS string) default to the registry's, i.e. the caller
        promises registry units; the server checks what is stated. Resending the
        previous index returns the same reply without advancing."""
        if self._shared is not None:  # the arrays go through shared memory
            with self._shared.lock:
                shared = self._shared.request(index, fields, stated_units(fields, units))
                call = self.client.steps.Step
                reply = self.client.call(call, shared, retry=True, timeout=timeout).message
                out = self._shared.outputs(reply)
            self.last_time = reply.time_rfc3339
            self.next_index = max(self.next_index, int(index) + 1)
            return out
        if self.stream:
            payload = sum(np.asarray(v).nbytes for v in fields.values())
            split = payload >= self.split_bytes and len(fields) > 1
            request = self._messages.request(index, fields, units, split)
            frames: list[Any]
            if isinstance(request, list):
                frames = request
            elif isinstance(request, E.Encoded):
                frames = [E.exchange_step(request)]
            else:
                frames = [pb.ExchangeRequest(step=request)]
            reply_fields, time_str = self._stream_step(frames, int(index), timeout)
        else:
            req = self._messages.request(index, fields, units, False)
            reply = self.client.call(self.client.steps.Step, req, retry=True, timeout=timeout)
            reply_fields, time_str = list(reply.pairs), reply.message.time_rfc3339
        out = {f.name: F.decode(f, data=data) for f, data in reply_fields}
        self.last_time = time_str
        self.next_index = max(self.next_index, int(index) + 1)
        return out

    def _stream_step(
        self, frames: list[Any], index: int, timeout: float | None
    ) -> tuple[list[tuple[pb.Field, Any]], str]:
        attempt = 0
        while True:
            if self._exchange is None:
                self._exchange = Exchange(self.client.steps, self.client.metadata)
            try:
                return self._exchange.step(frames, index, timeout)
            except CouplerRpcError as err:
                self._exchange.close(cancel=True)
                self._exchange = None
                if not (transient(err, stream=True) and attempt < self.client.retries):
                    raise
                backoff(self.client.backoff, attempt)
                attempt += 1

    def checkpoint(self, url: str | None = None) -> str:
        """Write a checkpoint (to ``url``, else the session's checkpoint_url); returns its URL."""
        req = pb.CheckpointRequest(session_id=self.id, url=url or "")
        reply = self.client.call(self.client.stub.Checkpoint, req, retry=True)
        return reply.url

    def update_land_cover(self, index: int, fractions: Any) -> LandCoverUpdate:
        """New (cell, 8) land-cover fractions [1] from step ``index`` (the next step) on; the
        server remaps the tile state conserving water, heat and leaf carbon. A refusal raises
        INVALID_ARGUMENT (field ``land_cover``: shape, valid_range, sums_to_one) or
        FAILED_PRECONDITION (``index``/``step_order``) and changes nothing."""
        req = pb.UpdateLandCoverRequest(session_id=self.id, index=int(index))
        F.encode_into(req.land_cover_fractions, "land_cover", np.asarray(fractions), "1")
        reply = self.client.call(self.client.stub.UpdateLandCover, req)
        return LandCoverUpdate(
            cells_changed=int(reply.cells_changed),
            water_residual=float(reply.water_residual),
            energy_residual=float(reply.energy_residual),
            carbon_residual=float(reply.carbon_residual),
            released={f.name: F.decode(f) for f in reply.released},
        )

    def assimilate(
        self,
        type: str,
        values: Any,
        errors: Any,
        lat: Any,
        lon: Any,
        times: Sequence[Any],
        units: str = "",
    ) -> int:
        """Send one observation batch: (obs,) values and error standard deviations in the
        registry's units of ``type``, lat/lon in degrees, times (RFC 3339 strings or
        datetime64; window starts, or the overpass for ``ts``). Returns the number of
        observations queued for the analysis at the start of the next step; a refusal raises
        INVALID_ARGUMENT naming the field and rule (nothing is queued), FAILED_PRECONDITION for
        a session without assimilation."""
        return self.assimilate_batches(
            [ObservationBatch(type, values, errors, lat, lon, list(times), units)]
        )

    def assimilate_batches(self, batches: Sequence[ObservationBatch]) -> int:
        """Send several batches in one request (accepted or refused as a whole)."""
        req = pb.AssimilateRequest(session_id=self.id)
        for b in batches:
            batch = req.batches.add(type=b.type, units=b.units)
            for name in ("values", "errors", "lat", "lon"):
                arr = np.asarray(getattr(b, name))
                F.encode_into(getattr(batch, name), name, arr)
            batch.times_rfc3339.extend(rfc3339(t) for t in b.times)
        return int(self.client.call(self.client.stub.Assimilate, req).accepted)

    def close(self) -> None:
        """Close the session on the server (flushes its record). Idempotent."""
        if self._closed:
            return
        if self._exchange is not None:
            self._exchange.close()
            self._exchange = None
        try:
            req = pb.CloseSessionRequest(session_id=self.id)
            self.client.call(self.client.stub.CloseSession, req)
        finally:
            self.release_shared()
        self._closed = True

    def release_shared(self) -> None:
        """Unlink this session's shared-memory segment (the next step makes a new one)."""
        if self._shared is not None:
            self._shared.close()

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DEFAULT_SPLIT_BYTES", "RemoteSession", "backoff", "transient"]
