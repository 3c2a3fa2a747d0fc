"""Offline validation of rendered Kubernetes manifests (``make lint-deploy``).

Every resource of every file is validated with kubernetes-validate in strict mode (unknown
fields are errors) against each Kubernetes version given. ServiceMonitor (a Prometheus Operator
CRD, for which kubernetes-validate has no schema) is not schema-validated; it gets a check of its
own instead: known fields only, and its selector and endpoint ports must match a Service of the
same file. Runs in the tool venv (deploy/requirements.txt), not the project's.

    python deploy/validate.py --versions 1.29,1.33 deploy/rendered/*.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

SERVICE_MONITOR = {
    "top": {"apiVersion", "kind", "metadata", "spec"},
    "spec": {"selector", "endpoints", "namespaceSelector", "jobLabel"},
    "endpoint": {"port", "path", "interval", "scrapeTimeout", "scheme", "tlsConfig"},
}


def check_service_monitor(doc: dict[str, Any], services: list[dict[str, Any]]) -> list[str]:
    name = doc.get("metadata", {}).get("name", "?")
    where = f"ServiceMonitor/{name}"
    errors = []
    if doc.get("apiVersion") != "monitoring.coreos.com/v1":
        errors.append(f"{where}: apiVersion must be monitoring.coreos.com/v1")
    spec = doc.get("spec") or {}
    for key, allowed in (("", doc), ("spec.", spec)):
        unknown = set(allowed) - SERVICE_MONITOR["top" if not key else "spec"]
        if unknown:
            errors.append(f"{where}: unknown field(s) {key}{sorted(unknown)}")
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    if not wanted:
        errors.append(f"{where}: spec.selector.matchLabels is required")
    matches = [
        s for s in services
        if wanted and wanted.items() <= (s["metadata"].get("labels") or {}).items()
    ]  # fmt: skip
    if wanted and not matches:
        errors.append(f"{where}: no Service in this file has labels {wanted}")
    endpoints = spec.get("endpoints") or []
    if not endpoints:
        errors.append(f"{where}: spec.endpoints is empty")
    for i, ep in enumerate(endpoints):
        unknown = set(ep) - SERVICE_MONITOR["endpoint"]
        if unknown:
            errors.append(f"{where}: unknown field(s) spec.endpoints[{i}].{sorted(unknown)}")
        for svc in matches:
            ports = {p.get("name") for p in svc["spec"].get("ports", [])}
            if ep.get("port") not in ports:
                errors.append(
                    f"{where}: spec.endpoints[{i}].port {ep.get('port')!r} is not a port of "
                    f"Service/{svc['metadata']['name']} ({sorted(ports)})"
                )
    return errors


def validate_file(path: Path, versions: list[str]) -> tuple[int, list[str]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    services = [d for d in docs if d.get("kind") == "Service"]
    errors: list[str] = []
    checked = 0
    for doc in docs:
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        if kind == "ServiceMonitor":
            errors += [f"{path}: {e}" for e in check_service_monitor(doc, services)]
            checked += 1
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{path}: {kind}/{name} (Kubernetes {version}): {exc.message}")
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.append(f"{path}: {kind}/{name}: no schema ({exc})")
            checked += 1
    return checked, errors


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--versions", required=True, help="Kubernetes versions, e.g. 1.29,1.30")
    args = p.parse_args(argv)
    args.versions = [v for v in args.versions.split(",") if v]
    total, errors = 0, []
    for path in args.files:
        checked, errs = validate_file(path, args.versions)
        total += checked
        errors += errs
    for e in errors:
        print(e, file=sys.stderr)
    print(
        f"{len(args.files)} file(s), {total} resource validations (strict, Kubernetes "
        f"{', '.join(args.versions)}): {len(errors)} error(s)"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
