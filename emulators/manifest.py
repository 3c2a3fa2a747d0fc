"""Emulator manifests: the JSON file next to every shipped artifact (``manifest.json``).

A manifest says what the artifact computes and how to call it — inputs and outputs with names,
units and normalisation, the recurrent state layout, the timestep — and where it came from: the
training data hash and sources, the held-out evaluation sources, the code version, the export
agreement checks and the skill table. Artifacts are referenced with their SHA-256, verified when
loaded (:meth:`Manifest.artifact_path`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from emulators.provenance import sha256_bytes

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1


class ManifestError(RuntimeError):
    """A manifest is missing, malformed, or does not match its artifact; ``field`` names what."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Channel:
    """One named column of an input or output tensor, in physical units; the network normalises
    inputs as (value − mean)/std and de-normalises outputs as z·std + mean internally."""

    name: str
    units: str
    long_name: str
    mean: float
    std: float


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: list[int | str]  # "rows" = any number of (member, cell, tile) rows
    dtype: str
    description: str
    channels: list[Channel] = field(default_factory=list)


@dataclass
class Manifest:
    name: str  # suite name, e.g. "flux-lstm"
    architecture: str  # registry name, e.g. "flux_lstm"
    config: dict[str, Any]
    timestep_seconds: float
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    recurrent_state: dict[str, Any]
    artifacts: dict[str, dict[str, str]]  # format -> {"file", "sha256"}
    training: dict[str, Any]
    code_version: str
    export_checks: dict[str, float] = field(default_factory=dict)
    skill: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""
    schema_version: int = SCHEMA_VERSION

    # ---- I/O -----------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @staticmethod
    def load(directory: str | Path) -> Manifest:
        path = Path(directory) / MANIFEST_FILE
        if not path.exists():
            raise ManifestError(
                "manifest",
                f"{path}: no manifest (run `landcoupler emulators "
                "train` or check the artifacts directory)",
            )
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ManifestError("manifest", f"{path}: not valid JSON: {exc}") from exc
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ManifestError(
                "schema_version",
                f"{path}: schema_version {raw.get('schema_version')!r}, expected {SCHEMA_VERSION}",
            )
        try:
            raw["inputs"] = [_spec(s) for s in raw["inputs"]]
            raw["outputs"] = [_spec(s) for s in raw["outputs"]]
            return Manifest(**raw)
        except (KeyError, TypeError) as exc:
            raise ManifestError("manifest", f"{path}: malformed manifest: {exc}") from exc

    # ---- artifacts -------------------------------------------------------------------------------
    def artifact_path(self, directory: str | Path, fmt: str, verify: bool = True) -> Path:
        """The file of artifact format ``fmt`` ("torchscript", "aoti", "onnx"), its SHA-256
        checked against the manifest."""
        if fmt not in self.artifacts:
            raise ManifestError(
                "artifacts",
                f"{self.name}: no {fmt!r} artifact; available: {', '.join(sorted(self.artifacts))}",
            )
        entry = self.artifacts[fmt]
        path = Path(directory) / entry["file"]
        if not path.exists():
            raise ManifestError("artifacts", f"{self.name}: artifact file {path} is missing")
        if verify and sha256_bytes(path.read_bytes()) != entry["sha256"]:
            raise ManifestError(
                "sha256", f"{self.name}: {path.name} does not match the manifest's sha256"
            )
        return path

    def hash(self) -> str:
        """SHA-256 of the manifest's JSON (identifies the emulator's numerics in records)."""
        return sha256_bytes(self.to_json().encode())


def _spec(raw: dict[str, Any]) -> TensorSpec:
    raw = dict(raw)
    raw["channels"] = [Channel(**c) for c in raw.get("channels", [])]
    return TensorSpec(**raw)


def file_entry(path: Path) -> dict[str, str]:
    """{"file": name, "sha256": hash} for a manifest's ``artifacts``."""
    return {"file": path.name, "sha256": sha256_bytes(path.read_bytes())}
