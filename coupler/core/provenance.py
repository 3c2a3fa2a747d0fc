"""Where results come from: code and library versions for records, checkpoints and Describe.

The code version itself (package version + ``git describe``) is ``emulators.provenance``'s, so
records written by the coupler and datasets written by the emulators say the same thing.
"""

from __future__ import annotations

import importlib.metadata
import platform

from emulators.provenance import code_version

__all__ = ["code_version", "library_versions"]

_DISTRIBUTIONS = (
    "landcoupler", "torch", "numpy", "zarr", "xarray", "fsspec", "numcodecs", "grpcio",
    "protobuf", "prometheus-client",
)  # fmt: skip


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries whose numerics or formats matter."""
    versions = {"python": platform.python_version()}
    for dist in _DISTRIBUTIONS:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
