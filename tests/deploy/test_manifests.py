"""What the rendered overlays promise the server, checked against the server itself: the probes
ask the health service the server registers, the kubelet's SIGKILL comes after the server's
drain budget, the args parse with `landcoupler serve`'s own parser, the Service and the
ServiceMonitor reach the ports the container opens. (Schema validation of the same files is
`make lint-deploy`, with kubernetes-validate in its own venv.)"""

from __future__ import annotations

import argparse

import pytest

from coupler.cli import serve
from coupler.wire.interceptors import SERVICE

from .manifests import OVERLAYS, config, documents, flag, resource, serve_args, server_container

MARGIN_S = 10  # time left after the drain budget for the process to exit


def parse(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(args)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_server_command_line_parses_and_binds_all_interfaces(overlay: str) -> None:
    args = serve_args(overlay)
    ns = parse(args)
    assert ns.command == "serve"
    assert ns.address == "0.0.0.0:50051" and ns.metrics_address == "0.0.0.0"
    assert ns.health_address == "0.0.0.0:50052"
    ports = {p["name"]: p["containerPort"] for p in server_container(overlay)["ports"]}
    assert ports == {"grpc": 50051, "metrics": ns.metrics_port, "health": 50052}
    assert ns.token_env == "LANDCOUPLER_TOKENS"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_kubelet_waits_for_the_drain(overlay: str) -> None:
    pod = resource(overlay, "Deployment", "landcoupler")["spec"]["template"]["spec"]
    grace = float(flag(serve_args(overlay), "grace"))
    assert grace == float(config(overlay)["LANDCOUPLER_GRACE"])
    assert pod["terminationGracePeriodSeconds"] >= grace + MARGIN_S
    live = server_container(overlay)["livenessProbe"]
    # a draining pod answers NOT_SERVING: liveness must not kill it before the grace period ends
    assert live["periodSeconds"] * live["failureThreshold"] >= pod["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_the_health_service_the_server_registers(overlay: str) -> None:
    c = server_container(overlay)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        grpc_probe = c[probe]["grpc"]  # on the plaintext health port, TLS or not
        assert grpc_probe["port"] == int(flag(serve_args(overlay), "health-address").split(":")[1])
        assert grpc_probe.get("service", "") in ("", SERVICE)
    assert c["readinessProbe"]["grpc"]["service"] == SERVICE


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_container_is_locked_down(overlay: str) -> None:
    pod = resource(overlay, "Deployment", "landcoupler")["spec"]["template"]["spec"]
    ctx = server_container(overlay)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER (Dockerfile)
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in server_container(overlay)["volumeMounts"]}
    assert "/tmp" in mounts  # every cache of the image points under /tmp


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_and_servicemonitor_reach_the_container_ports(overlay: str) -> None:
    svc = resource(overlay, "Service", "landcoupler")
    pod = resource(overlay, "Deployment", "landcoupler")["spec"]["template"]
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    named = {p["name"] for p in server_container(overlay)["ports"]}
    assert named == {"grpc", "metrics", "health"}  # health: for the kubelet only
    assert {p["targetPort"] for p in svc["spec"]["ports"]} == {"grpc", "metrics"}
    monitor = resource(overlay, "ServiceMonitor", "landcoupler")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    hpa = resource(overlay, "HorizontalPodAutoscaler", "landcoupler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "landcoupler"
    pdb = resource(overlay, "PodDisruptionBudget", "landcoupler")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_the_tls_overlay_serves_tls_from_the_mounted_secret() -> None:
    ns = parse(serve_args("cpu-tls"))
    mount = {m["name"]: m["mountPath"] for m in server_container("cpu-tls")["volumeMounts"]}
    assert (str(ns.tls_cert), str(ns.tls_key)) == (
        f"{mount['tls']}/tls.crt",
        f"{mount['tls']}/tls.key",
    )
    pod = resource("cpu-tls", "Deployment", "landcoupler")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert volume["secret"] == {
        **volume["secret"],
        "secretName": "landcoupler-tls",
        "optional": False,
    }
    assert parse(serve_args("cpu")).tls_cert is None  # the plain overlays stay plaintext


def test_secrets_are_referenced_not_shipped() -> None:
    for overlay in OVERLAYS:
        assert not [d for d in documents(overlay) if d["kind"] == "Secret"]
        env = {e["name"]: e for e in server_container(overlay)["env"]}
        assert (
            env["LANDCOUPLER_TOKENS"]["valueFrom"]["secretKeyRef"]["name"] == "landcoupler-tokens"
        )


def test_with_triton_points_the_server_at_the_triton_service() -> None:
    host, port = config("with-triton")["LANDCOUPLER_TRITON_URL"].rsplit(":", 1)
    svc = resource("with-triton", "Service", host)
    assert int(port) in {p["port"] for p in svc["spec"]["ports"] if p["name"] == "grpc"}
    triton = resource("with-triton", "Deployment", host)["spec"]["template"]["spec"]
    assert svc["spec"]["selector"].items() <= (
        resource("with-triton", "Deployment", host)["spec"]["template"]["metadata"][
            "labels"
        ].items()
    )
    (export,) = triton["initContainers"]
    (server,) = triton["containers"]
    repo = export["args"][export["args"].index("--triton") + 1]
    assert f"--model-repository={repo}" in server["args"]
    shared = {m["name"] for m in export["volumeMounts"] if m["mountPath"] == repo}
    assert shared & {m["name"] for m in server["volumeMounts"] if m["mountPath"] == repo}
    assert export["image"] == server_container("with-triton")["image"]  # models match the server
