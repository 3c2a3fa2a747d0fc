"""Code version and content hashes for records, datasets and manifests."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from importlib import metadata
from pathlib import Path


@functools.cache
def code_version() -> str:
    """``landcoupler <version>`` plus ``git describe`` of the source tree when available."""
    try:
        version = metadata.version("landcoupler")
    except metadata.PackageNotFoundError:
        version = "unknown"
    root = Path(__file__).resolve().parents[1]
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return f"landcoupler {version}" + (f" ({described})" if described else "")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
