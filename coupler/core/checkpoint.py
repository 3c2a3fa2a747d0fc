"""Session checkpoints: one file per session at an fsspec URL, written atomically.

A checkpoint holds everything needed to continue a session bit-identically in another process:
the config (JSON, with the grid and land-cover arrays as exact float64 tensors), the backend
identity, the next step index, the land state tensors, the last reply (so a retry of the last
step still works after a resume), the session's extra tensors (the previous water storage
for the closure diagnostics) and, for sessions with assimilation, the assimilator's state
(generators, forcing noise, inflation, observation history and queue, perturbed parameters,
the observation file's cursor and sha256 fingerprint; key ``assimilation``, absent in older
checkpoints).

Format: ``torch.save`` of a dict of plain types and tensors, read back with
``torch.load(weights_only=True)`` (no arbitrary pickles are executed). Writes go to a temporary
name beside the target and are then renamed onto it (``os.replace`` locally, ``fs.mv``
elsewhere; object stores write whole objects atomically anyway), so a reader never sees a
half-written checkpoint. Periodic and shutdown checkpoints of a session go to
``<checkpoint_url>/<session_id>.ckpt`` (:func:`default_url`), overwritten each time.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import torch
from fsspec.implementations.local import LocalFileSystem

from coupler.core import provenance
from coupler.errors import CouplerError, FailedPrecondition, InvalidArgument, NotFound
from coupler.spec import SessionSpec

FORMAT = "landcoupler-checkpoint"
VERSION = 1
SUFFIX = ".ckpt"


@dataclass
class CheckpointData:
    """What a checkpoint holds. Arrays are float64 numpy, state tensors torch (any dtype)."""

    session_id: str
    owner: str
    config: SessionSpec
    backend: dict[str, Any]
    next_index: int
    state: dict[str, torch.Tensor]
    last_reply: dict[str, np.ndarray] | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    code_version: str = ""
    #: sessions with assimilation: ``SessionAssimilation.state_dict`` (plain types and tensors)
    assimilation: dict[str, Any] | None = None


def default_url(prefix: str, session_id: str) -> str:
    """Where a session's periodic/shutdown checkpoint goes under the ``checkpoint_url`` prefix."""
    return f"{prefix.rstrip('/')}/{session_id}{SUFFIX}"


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, copy=True))


def to_bytes(data: CheckpointData) -> bytes:
    """Serialise a checkpoint (see the module docstring)."""
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "session_id": data.session_id,
        "owner": data.owner,
        "config": data.config.to_json(include_arrays=False),
        "config_arrays": {k: _to_tensor(v) for k, v in data.config.arrays().items()},
        "backend": json.dumps(data.backend, sort_keys=True),
        "next_index": int(data.next_index),
        "state": {k: v.detach().cpu() for k, v in data.state.items()},
        "last_reply": None
        if data.last_reply is None
        else {k: _to_tensor(v) for k, v in data.last_reply.items()},
        "extra": {k: v.detach().cpu() for k, v in data.extra.items()},
        "code_version": data.code_version or provenance.code_version(),
        "assimilation": data.assimilation,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def from_bytes(blob: bytes, source: str = "checkpoint") -> CheckpointData:
    """Parse a checkpoint; a file that is not one is InvalidArgument(field="resume_from")."""
    try:
        payload = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise InvalidArgument(
            f"resume_from: {source} is not a landcoupler checkpoint: {exc}",
            field="resume_from",
            rule="checkpoint_format",
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InvalidArgument(
            f"resume_from: {source} is not a landcoupler checkpoint",
            field="resume_from",
            rule="checkpoint_format",
        )
    if payload.get("version") != VERSION:
        raise InvalidArgument(
            f"resume_from: {source} has checkpoint version {payload.get('version')}, this "
            f"server reads version {VERSION}",
            field="resume_from",
            rule="checkpoint_version",
        )
    try:
        arrays = {k: v.numpy() for k, v in payload["config_arrays"].items()}
        config = SessionSpec.from_dict(json.loads(payload["config"]), arrays)
    except CouplerError as exc:
        raise InvalidArgument(
            f"resume_from: the config stored in {source} is invalid: {exc}",
            field="resume_from",
            rule="checkpoint_config",
        ) from exc
    reply = payload["last_reply"]
    return CheckpointData(
        session_id=str(payload["session_id"]),
        owner=str(payload["owner"]),
        config=config,
        backend=json.loads(payload["backend"]),
        next_index=int(payload["next_index"]),
        state=dict(payload["state"]),
        last_reply=None if reply is None else {k: _frozen(v.numpy()) for k, v in reply.items()},
        extra=dict(payload["extra"]),
        code_version=str(payload["code_version"]),
        assimilation=payload.get("assimilation"),
    )


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def save(url: str, data: CheckpointData) -> str:
    """Write ``data`` to ``url`` atomically; returns ``url``.

    Raises FailedPrecondition(field="checkpoint_url", rule="writable") if it cannot be written.
    """
    blob = to_bytes(data)
    try:
        fs, path = fsspec.core.url_to_fs(url)
        parent = path.rsplit("/", 1)[0] if "/" in path.strip("/") else ""
        if parent:
            fs.makedirs(parent, exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        if isinstance(fs, LocalFileSystem):
            with open(tmp, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        else:
            with fs.open(tmp, "wb") as f:
                f.write(blob)
            fs.mv(tmp, path)
    except (OSError, ValueError, ImportError) as exc:
        raise FailedPrecondition(
            f"checkpoint_url: cannot write a checkpoint to {url!r}: {exc}",
            field="checkpoint_url",
            rule="writable",
        ) from exc
    return url


def load(url: str) -> CheckpointData:
    """Read the checkpoint at ``url``: NotFound(field="resume_from") if there is none."""
    try:
        fs, path = fsspec.core.url_to_fs(url)
        with fs.open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise NotFound(
            f"resume_from: no checkpoint at {url!r}", field="resume_from", rule="exists"
        ) from None
    except (OSError, ValueError, ImportError) as exc:
        raise FailedPrecondition(
            f"resume_from: cannot read {url!r}: {exc}", field="resume_from", rule="readable"
        ) from exc
    return from_bytes(blob, source=repr(url))


def check_backend(stored: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Refuse to resume on a backend whose numerics may differ (name, class or version)."""
    for key in ("name", "class", "version", "manifest_hash"):
        if stored.get(key) != current.get(key):
            raise FailedPrecondition(
                f"resume_from: the checkpoint was written by backend {dict(stored)}, this server "
                f"has {dict(current)}; resuming would not continue bit-identically",
                field="resume_from",
                rule="backend_identity",
            )
