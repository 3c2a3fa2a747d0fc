"""The committed rendering of the Kubernetes overlays (deploy/rendered/, `make deploy-render`),
read as a test would read what the cluster gets: the server Deployment, its ConfigMap, and the
`landcoupler serve` command line the kubelet would run (``$(VAR)`` expanded from the env)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RENDERED = ROOT / "deploy" / "rendered"
OVERLAYS = ("cpu", "cpu-tls", "gpu", "with-triton")
SERVER = "landcoupler"


@cache
def documents(overlay: str) -> tuple[dict[str, Any], ...]:
    text = (RENDERED / f"{overlay}.yaml").read_text()
    return tuple(d for d in yaml.safe_load_all(text) if d)


def resource(overlay: str, kind: str, name: str) -> dict[str, Any]:
    found = [
        d for d in documents(overlay) if d["kind"] == kind and d["metadata"]["name"] == name
    ]  # fmt: skip
    assert len(found) == 1, f"{overlay}: {len(found)} {kind}/{name}"
    return found[0]


def server_container(overlay: str) -> dict[str, Any]:
    pod = resource(overlay, "Deployment", SERVER)["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == SERVER]
    return container


def config(overlay: str) -> dict[str, str]:
    return dict(resource(overlay, "ConfigMap", f"{SERVER}-config")["data"])


def serve_args(overlay: str) -> list[str]:
    """The container's args with ``$(VAR)`` expanded from its ConfigMap, as the kubelet does."""
    env = config(overlay)

    def expand(arg: str) -> str:
        return re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg)

    return [expand(a) for a in server_container(overlay)["args"]]


def flag(args: list[str], name: str) -> str:
    """The value of ``--name=value`` in ``args``."""
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    assert len(values) == 1, (name, args)
    return values[0]
