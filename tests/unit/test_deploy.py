"""deploy/: the dashboard, the alert rules and the Kubernetes manifests, checked by loading them."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "imgworker-dashboard.json"
RULES = ROOT / "deploy" / "prometheus" / "imgworker-rules.yml"
KNOWN = set(re.findall(r"imgworker_[a-z_]+", (ROOT / "docs" / "metrics.md").read_text()))


def _metric_names(expr: str) -> set[str]:
    names = set(re.findall(r"imgworker_[a-z_]+", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def test_dashboard_loads_and_uses_only_documented_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "imgworker" and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in (
        "imports per second",
        "failures",
        "step duration",
        "bytes",
        "queue wait",
        "in progress",
        "staging",
    ):
        assert topic in titles
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            unknown = _metric_names(target["expr"]) - KNOWN
            assert not unknown, f"{panel['title']}: {unknown} not in docs/metrics.md"


def test_dashboard_queries_parse_with_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: apt-get install prometheus", pytrace=False)
    dashboard = json.loads(DASHBOARD.read_text())
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            rules.append(f"      - record: dashboard:panel{panel['id']}_{target['refId']}")
            rules.append(f"        expr: {json.dumps(target['expr'])}")
    path = tmp_path / "dashboard-rules.yml"
    path.write_text("\n".join(rules) + "\n")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_check_and_their_unit_tests_pass_with_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: apt-get install prometheus", pytrace=False)
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted(p.name for p in (RULES.parent / "tests").glob("*.yml"))
    tested = subprocess.run(
        [promtool, "test", "rules", *tests],
        cwd=RULES.parent / "tests",
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_rules_use_only_documented_metrics() -> None:
    unknown = _metric_names(RULES.read_text()) - KNOWN
    assert not unknown


def _validator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "validate", ROOT / "deploy" / "kubernetes" / "validate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kubernetes_manifests_are_valid() -> None:
    validate = _validator()
    assert validate.schema_problems("1.30.0") == []
    assert validate.consistency_problems() == []


def test_the_validator_catches_mistakes(monkeypatch: pytest.MonkeyPatch) -> None:
    validate = _validator()
    real = validate.documents()

    def mutated() -> list[tuple[str, dict[str, object]]]:
        docs = copy.deepcopy(real)
        for _name, doc in docs:
            if doc["kind"] == "Deployment":
                doc["spec"]["replica"] = 2  # typo of replicas
                doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 30
            if doc["kind"] == "ScaledObject":
                doc["spec"]["triggers"][0]["metadata"]["protocol"] = "amqp"
                doc["spec"]["triggers"][0]["metadata"]["mode"] = "Queuelength"
        return docs

    monkeypatch.setattr(validate, "documents", mutated)
    problems = validate.schema_problems("1.30.0") + validate.consistency_problems()
    text = "\n".join(problems)
    assert "replica" in text
    assert "Queuelength" in text
    assert "terminationGracePeriodSeconds must exceed" in text
    assert "protocol http" in text
