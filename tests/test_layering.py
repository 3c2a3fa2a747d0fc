"""Layering is law: emulators never imports coupler; generated protobuf code only in the wire
layer."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIRE_MODULES = ("coupler/wire", "coupler/_proto")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _py_files(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    return files


def test_emulators_never_import_coupler() -> None:
    offenders = {
        str(p.relative_to(ROOT)): name
        for p in _py_files("emulators")
        for name in _imports(p)
        if name == "coupler" or name.startswith("coupler.")
    }
    assert offenders == {}


def test_generated_protobuf_only_imported_by_the_wire_layer() -> None:
    offenders = {}
    for p in _py_files("coupler") + _py_files("emulators"):
        rel = p.relative_to(ROOT).as_posix()
        if rel.startswith(WIRE_MODULES):
            continue
        for name in _imports(p):
            if "_proto" in name.split(".") or name.endswith("_pb2") or name.endswith("_pb2_grpc"):
                offenders[rel] = name
    assert offenders == {}


def test_layering_checker_sees_a_violation(tmp_path: Path) -> None:
    """The checker itself can fail: a file importing coupler is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom coupler.client import CouplerClient\n")
    assert "coupler.client" in _imports(bad)


def test_the_core_knows_metrics_only_through_the_sink_protocol() -> None:
    """coupler/core reports to ``coupler.core.telemetry.MetricsSink``; Prometheus
    (``coupler.metrics``) sits above it and takes plain numbers, nothing of the assimilation."""
    offenders = {
        str(p.relative_to(ROOT)): name
        for p in _py_files("coupler/core")
        for name in _imports(p)
        if name in ("coupler.metrics", "prometheus_client") or name.startswith("prometheus_client.")
    }
    assert offenders == {}
    metrics = [n for n in _imports(ROOT / "coupler" / "metrics.py") if n.startswith("coupler")]
    assert metrics == []


def test_assimilation_is_a_library() -> None:
    """coupler/assimilation imports only itself and the domain errors of coupler (never the
    core, the wire, the experiments or any other application); the experiments use it."""
    allowed = ("coupler.assimilation", "coupler.errors")
    offenders = {
        str(p.relative_to(ROOT)): name
        for p in _py_files("coupler/assimilation")
        for name in _imports(p)
        if name.split(".")[0] == "coupler" and not name.startswith(allowed)
    }
    assert offenders == {}
