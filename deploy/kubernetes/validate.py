"""Validate deploy/kubernetes offline: core kinds against Kubernetes' schemas (the
kubernetes-validate package), custom resources against schemas/*.json, plus the checks that
tie the manifests to the worker (probe paths, grace period above the drain grace, the queue
KEDA watches). Exit status 1 lists every problem.

Usage: .venv/bin/python deploy/kubernetes/validate.py [KUBERNETES_VERSION]
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
CUSTOM = {"keda.sh/v1alpha1", "monitoring.coreos.com/v1"}


def documents() -> list[tuple[str, dict[str, Any]]]:
    """Every YAML document of the manifests with the file it came from."""
    found = []
    for path in sorted(HERE.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


def schema_problems(version: str) -> list[str]:
    problems = []
    for name, document in documents():
        api, kind = document.get("apiVersion", ""), document.get("kind", "")
        label = f"{name}: {kind}/{document.get('metadata', {}).get('name', '?')}"
        if kind == "Kustomization":
            continue
        try:
            if api in CUSTOM:
                schema_path = HERE / "schemas" / f"{api.replace('/', '_')}_{kind}.json"
                jsonschema.validate(document, json.loads(schema_path.read_text()))
            else:
                kubernetes_validate.validate(document, version, strict=True)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            problems.append(f"{label}: {getattr(exc, 'message', exc)}")
    return problems


def consistency_problems() -> list[str]:
    by_kind = {doc["kind"]: doc for _name, doc in documents()}
    problems = []
    config = tomllib.loads(by_kind["ConfigMap"]["data"]["imgworker.toml"])
    grace = config["worker"]["drain_grace_seconds"]
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    if pod["terminationGracePeriodSeconds"] <= grace:
        problems.append("terminationGracePeriodSeconds must exceed drain_grace_seconds")
    container = pod["containers"][0]
    if container["readinessProbe"]["httpGet"]["path"] != "/readyz":
        problems.append("the readiness probe must be /readyz")
    if container["livenessProbe"]["httpGet"]["path"] != "/livez":
        problems.append("the liveness probe must be /livez")
    if "drain" not in container["lifecycle"]["preStop"]["exec"]["command"]:
        problems.append("preStop must start the drain")
    trigger = by_kind["ScaledObject"]["spec"]["triggers"][0]["metadata"]
    if trigger.get("protocol") != "http":
        problems.append("KEDA must use protocol http so unacknowledged messages count")
    queue = config.get("broker", {}).get("queue", "imgworker.tasks")
    if trigger["queueName"] != queue:
        problems.append(f"KEDA watches {trigger['queueName']} but workers consume {queue}")
    return problems


def main() -> int:
    version = sys.argv[1] if len(sys.argv) > 1 else "1.30.0"
    problems = schema_problems(version) + consistency_problems()
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"kubernetes manifests valid (Kubernetes {version}, KEDA and PodMonitor schemas)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
