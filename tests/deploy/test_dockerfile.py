"""The image agrees with the package and the manifests (hadolint lints it in `make lint-deploy`;
no Docker engine builds it here): the torch pin is the Makefile's, the default command parses
with `landcoupler serve`'s parser and opens the ports the image exposes and the pods declare,
the user is the pods' runAsUser, and every cache path is under /tmp (the writable emptyDir)."""

from __future__ import annotations

import json
import re

from .manifests import OVERLAYS, ROOT, resource, server_container
from .test_manifests import parse

DOCKERFILE = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """Arguments of every ``name`` instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", text, re.MULTILINE)]


def test_torch_is_pinned_like_the_makefile() -> None:
    pins = re.findall(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.MULTILINE)
    assert f"ARG TORCH_VERSION={pins[0]}" in DOCKERFILE
    assert f"torch=={pins[0]}" in (ROOT / "Makefile").read_text()


def test_the_default_command_serves_the_exposed_ports() -> None:
    (entrypoint,) = instructions("ENTRYPOINT")
    (cmd,) = instructions("CMD")
    assert json.loads(entrypoint) == ["landcoupler"]
    ns = parse(json.loads(cmd))
    ports = {int(ns.address.rsplit(":", 1)[1]), ns.metrics_port}
    ports.add(int(ns.health_address.rsplit(":", 1)[1]))
    (exposed,) = instructions("EXPOSE")
    assert {int(p) for p in exposed.split()} == ports
    for overlay in OVERLAYS:
        declared = {p["containerPort"] for p in server_container(overlay)["ports"]}
        assert declared == ports, overlay


def test_the_user_is_the_pods_and_caches_live_under_tmp() -> None:
    (user,) = instructions("USER")
    uid, gid = (int(x) for x in user.split(":"))
    for overlay in OVERLAYS:
        ctx = resource(overlay, "Deployment", "landcoupler")["spec"]["template"]["spec"]
        assert (ctx["securityContext"]["runAsUser"], ctx["securityContext"]["runAsGroup"]) == (
            uid,
            gid,
        )
    env = " ".join(instructions("ENV"))
    for var in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "MPLCONFIGDIR", "TORCHINDUCTOR_CACHE_DIR"):
        value = re.search(rf"\b{var}=(\S+)", env)
        assert value is not None and value.group(1).startswith("/tmp"), var
