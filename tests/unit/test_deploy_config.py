"""deploy/ is code: Prometheus rules and their unit tests, Alertmanager routing, metric names, Grafana, k8s.

promtool and amtool run as subprocesses (no network). Without the binary a test is skipped, except on CI
(`CI=true`), where scripts/install-system.sh installs them and a missing binary is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core import metric_names

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"
RULE_TESTS_DIR = DEPLOY / "prometheus" / "tests"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
ROUTE_CASES = DEPLOY / "alertmanager" / "tests" / "routes.yml"
RUNBOOKS = DEPLOY / "runbooks"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "tollgate.json"
K8S = DEPLOY / "k8s"
RUNBOOK_URL = re.compile(r"^https://github\.com/tollgate/tollgate/blob/main/deploy/runbooks/(?P<name>[A-Za-z0-9]+)\.md$")
METRIC = re.compile(r"\btollgate_[a-z0-9_]*[a-z0-9]")
SELECTOR = re.compile(r"\b(?P<name>tollgate_[a-z0-9_]*[a-z0-9])\s*\{(?P<matchers>[^}]*)\}")
MATCHER_LABEL = re.compile(r"(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
SCRAPE_LABELS = {"job", "instance"}
SEVERITIES = {"warning", "critical"}
BUSINESS_RULES = {
    "volume.warning", "volume.breach", "volume.severe", "rate.breach",
    "app.unregistered", "government.unnotified", "agreement.missing", "volume.anomaly",
}


def tool(name: str) -> str:
    """Path of a CLI tool; skip without it, but fail on CI, where it must be installed."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian prometheus, prometheus-alertmanager: install-system.sh)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must install it")
        pytest.skip(message)
    return path


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    # argv is a fixed tool path plus repo file names and labels from the repo: no untrusted input.
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)  # noqa: S603


def rule_files() -> list[Path]:
    files = sorted(RULES_DIR.glob("*.yml"))
    assert files, f"no rule files in {RULES_DIR}"
    return files


def alert_rules() -> dict[str, dict[str, Any]]:
    """Every alerting rule by name, with the file it lives in."""
    alerts: dict[str, dict[str, Any]] = {}
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in alerts, f"alert {rule['alert']} defined twice"
                    alerts[rule["alert"]] = {**rule, "file": path.name}
    return alerts


def is_business(rule: dict[str, Any]) -> bool:
    return rule["file"] == "business.yml"


def duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    total = 0.0
    for amount, unit in re.findall(r"(\d+)(ms|s|m|h|d)", text):
        total += int(amount) * units[unit]
    return total


# --- Prometheus ---------------------------------------------------------------------------------------

def test_promtool_check_rules() -> None:
    result = run(tool("promtool"), "check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config() -> None:
    result = run(tool("promtool"), "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    tests = sorted(RULE_TESTS_DIR.glob("*.yml"))
    assert tests, f"no rule tests in {RULE_TESTS_DIR}"
    result = run(tool("promtool"), "test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_not_firing_test() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS_DIR.glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = set(alert_rules())
    assert alerts - firing == set(), "alerts without a firing test"
    assert alerts - silent == set(), "alerts without a not-firing test"
    assert (firing | silent) - alerts == set(), "tests for alerts that do not exist"


def test_reference_config_scrapes_the_three_jobs_and_loads_the_rules() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {scrape["job_name"] for scrape in config["scrape_configs"]}
    assert {"tollgate-ingest", "tollgate-processor", "tollgate-ledger"} <= jobs
    assert config["rule_files"] == ["rules/*.yml"]
    assert config["alerting"]["alertmanagers"]


@pytest.mark.parametrize("name", sorted(alert_rules()))
def test_alert_has_severity_annotations_and_runbook(name: str) -> None:
    rule = alert_rules()[name]
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert {"summary", "description", "runbook_url"} <= set(annotations)
    match = RUNBOOK_URL.match(annotations["runbook_url"])
    assert match and match["name"] == name, annotations["runbook_url"]
    assert (RUNBOOKS / f"{name}.md").is_file(), f"missing runbook deploy/runbooks/{name}.md"


@pytest.mark.parametrize("name", sorted(n for n, r in alert_rules().items() if is_business(r)))
def test_business_alert_keeps_the_licensee_and_fires_fast(name: str) -> None:
    rule = alert_rules()[name]
    assert "licensee" in rule["expr"], "a business alert must keep the licensee label"
    by_clauses = re.findall(r"\bby\s*\(([^)]*)\)", rule["expr"])
    assert all("licensee" in clause for clause in by_clauses), f"aggregation drops licensee: {by_clauses}"
    assert "{{ $labels.licensee }}" in rule["annotations"]["description"]
    assert "{{ $labels.licensee }}" in rule["annotations"]["summary"]
    if rule["labels"].get("category") == "business":
        # The e2e test sees these fire within a few 1s evaluations; the processor already decided.
        assert duration_seconds(rule.get("for", "0s")) <= 5


def test_business_alerts_cover_every_rule_of_the_alert_schema() -> None:
    used = set()
    for rule in alert_rules().values():
        used.update(re.findall(r'tollgate_active_violation\{rule="([^"]+)"\}', rule["expr"]))
    assert used == BUSINESS_RULES
    schema = json.loads((ROOT / "schemas" / "io.tollgate.alert.v1.schema.json").read_text())
    schema_text = json.dumps(schema)
    for rule_name in BUSINESS_RULES:
        assert f'"{rule_name}"' in schema_text, f"{rule_name} is not a rule of the alert schema"


def test_every_runbook_belongs_to_an_alert() -> None:
    pages = {path.stem for path in RUNBOOKS.glob("*.md")} - {"README"}
    assert pages == set(alert_rules())


# --- Alertmanager -------------------------------------------------------------------------------------

def test_amtool_check_config() -> None:
    result = run(tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def _route_test(labels: dict[str, str], receivers: list[str]) -> subprocess.CompletedProcess[str]:
    return run(
        tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
        f"--verify.receivers={','.join(receivers)}", *(f"{key}={value}" for key, value in labels.items()),
    )


ROUTE_CASE_LIST = yaml.safe_load(ROUTE_CASES.read_text())["cases"]


@pytest.mark.parametrize("case", ROUTE_CASE_LIST, ids=lambda case: case["name"])
def test_alertmanager_route_cases(case: dict[str, Any]) -> None:
    result = _route_test({k: str(v) for k, v in case["labels"].items()}, case["receivers"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(alert_rules()))
def test_every_alert_routes_to_the_receiver_of_its_severity(name: str) -> None:
    rule = alert_rules()[name]
    labels = {"alertname": name, **rule["labels"]}
    if is_business(rule):
        labels["licensee"] = "acme"
    result = _route_test(labels, [f"tollgate-{rule['labels']['severity']}"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_receiver_is_reported() -> None:
    # Guards the guard: amtool must exit non-zero when the receiver does not match.
    result = _route_test({"alertname": "TollgateVolumeBreach", "severity": "critical"}, ["tollgate-warning"])
    assert result.returncode != 0


def test_alertmanager_groups_by_licensee_and_inhibits_lower_volume_levels() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    assert config["route"]["group_by"] == ["alertname", "licensee"]
    critical = [r for r in config["route"]["routes"] if r["matchers"] == ['severity="critical"']]
    assert critical and duration_seconds(critical[0]["group_wait"]) <= 10
    inhibitions = {
        (tuple(rule["source_matchers"]), tuple(rule["target_matchers"]), tuple(rule.get("equal", [])))
        for rule in config["inhibit_rules"]
    }
    severe = ('alertname="TollgateVolumeSevere"',)
    breach = ('alertname="TollgateVolumeBreach"',)
    lower = ('alertname=~"TollgateVolumeBreach|TollgateVolumeWarning"',)
    assert (severe, lower, ("licensee",)) in inhibitions
    assert (breach, ('alertname="TollgateVolumeWarning"',), ("licensee",)) in inhibitions
    alerts = set(alert_rules())
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            if matcher.startswith("alertname"):
                names = matcher.split("=", 1)[1].lstrip("~").strip('"').split("|")
                assert set(names) <= alerts, f"inhibit rule names unknown alerts: {matcher}"


# --- metric names -------------------------------------------------------------------------------------

def _contributing_metric_names() -> set[str]:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text.split("## Metric names", 1)[1].split("\n## ", 1)[0]
    return set(METRIC.findall(section))


def test_metric_names_module_matches_contributing() -> None:
    documented = _contributing_metric_names()
    assert documented, "no metric names found in CONTRIBUTING.md"
    exposed = metric_names.all_exposed_names()
    assert documented - exposed - _histogram_bases() == set(), "CONTRIBUTING.md has names the module lacks"
    for base in metric_names.ALL_METRICS:
        assert documented & {base, *metric_names.exposed_names(base)}, f"{base} is not in CONTRIBUTING.md"
        assert base.startswith("tollgate_")
        if metric_names.KINDS[base] == "counter":
            assert not base.endswith("_total"), "counter constants are base names; the client adds _total"
    assert set(metric_names.LABELS) == set(metric_names.KINDS)


def _histogram_bases() -> set[str]:
    """Histograms are documented by their base name, which is never a series of its own."""
    return {base for base, kind in metric_names.KINDS.items() if kind == "histogram"}


def test_family_of_maps_suffixes_back() -> None:
    assert metric_names.family_of("tollgate_ingest_events_total") == metric_names.INGEST_EVENTS
    seconds = metric_names.INGEST_REQUEST_SECONDS
    assert metric_names.family_of("tollgate_ingest_request_seconds_bucket") == seconds
    assert metric_names.family_of("tollgate_usage_ratio") == metric_names.USAGE_RATIO
    assert metric_names.family_of("tollgate_usage_ratio_total") is None
    assert metric_names.family_of("tollgate_ingest_events") is None  # a counter is never scraped bare


def _deploy_texts() -> dict[str, str]:
    """Every deploy file that may name a metric: rules and tests, dashboard, k8s, runbooks, docs, compose."""
    files = [
        *rule_files(), *RULE_TESTS_DIR.glob("*.yml"), DASHBOARD, *K8S.glob("*.yaml"), *RUNBOOKS.glob("*.md"),
        DEPLOY / "README.md", ROOT / "docker-compose.yml", PROMETHEUS_CONFIG,
    ]
    return {str(path.relative_to(ROOT)): path.read_text() for path in files if path.is_file()}


def test_every_metric_name_in_deploy_is_exported() -> None:
    exposed = metric_names.all_exposed_names() | _histogram_bases()  # prose may name a histogram
    unknown = {
        (where, name) for where, text in _deploy_texts().items() for name in METRIC.findall(text)
        if name not in exposed
    }
    assert unknown == set(), "metric names not in services.core.metric_names / CONTRIBUTING.md"


def test_metrics_services_create_by_literal_name_are_exported() -> None:
    # Services should use the constants; a literal name must still be one of them.
    created = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary)\(\s*[\"'](?P<name>[^\"']+)[\"']")
    unknown = set()
    for path in (ROOT / "services").rglob("*.py"):
        for match in created.finditer(path.read_text()):
            name = match["name"]
            base = name.removesuffix("_total") if name.endswith("_total") else name
            if base not in metric_names.KINDS:
                unknown.add((str(path.relative_to(ROOT)), name))
    assert unknown == set()


def _promql_expressions() -> list[tuple[str, str]]:
    exprs = [(f"rules:{name}", rule["expr"]) for name, rule in alert_rules().items()]
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs.append((f"dashboard:{panel['title']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        exprs.append((f"dashboard:${variable['name']}", variable["definition"]))
    return exprs


def test_selectors_use_only_labels_the_metric_has() -> None:
    problems = []
    for where, expr in _promql_expressions():
        for name in METRIC.findall(expr):
            assert name in metric_names.all_exposed_names(), f"{where}: no service exposes a series {name}"
        for match in SELECTOR.finditer(expr):
            base = metric_names.family_of(match["name"])
            assert base is not None, f"{where}: unknown metric {match['name']}"
            allowed = set(metric_names.LABELS[base]) | SCRAPE_LABELS
            used = set(MATCHER_LABEL.findall(match["matchers"]))
            if used - allowed:
                problems.append((where, match["name"], sorted(used - allowed)))
    assert problems == []


def test_label_values_the_rules_depend_on_are_documented() -> None:
    text = "\n".join(rule["expr"] for rule in alert_rules().values())
    for value in re.findall(r'outcome="([^"]+)"', text):
        assert value in metric_names.INGEST_OUTCOMES + metric_names.PROCESSOR_OUTCOMES
    for values in re.findall(r'limit=~?"([^"]+)"', text):
        assert set(values.split("|")) <= set(metric_names.USAGE_LIMITS)


# --- Grafana ------------------------------------------------------------------------------------------

def test_dashboard_is_valid_and_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    uids = {source["uid"] for source in datasources["datasources"] if source["type"] == "prometheus"}
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] in uids
            assert panel["targets"], f"panel {panel['title']} has no query"
    exprs = " ".join(expr for _, expr in _promql_expressions())
    for needed in ("tollgate_usage_ratio", "tollgate_active_violation", "tollgate_ingest_events_total",
                   "tollgate_processor_lag_seconds", "tollgate_ledger_consumer_lag",
                   "tollgate_ledger_invoiced_minor_total"):
        assert needed in exprs, f"dashboard does not show {needed}"
    providers = yaml.safe_load((provisioning / "dashboards" / "tollgate.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


# --- every YAML in deploy/, Kubernetes ----------------------------------------------------------------

def _all_deploy_documents() -> list[tuple[Path, dict[str, Any]]]:
    documents = []
    for path in sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")]):
        for document in yaml.safe_load_all(path.read_text()):
            assert document is None or isinstance(document, dict), f"{path}: top level must be a mapping"
            if document:
                documents.append((path, document))
    return documents


def test_every_yaml_in_deploy_parses() -> None:
    assert len(_all_deploy_documents()) >= 10


def _k8s_objects(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in _all_deploy_documents() if doc.get("kind") == kind and "apiVersion" in doc]


def test_deployments_have_probes_and_resources() -> None:
    deployments = _k8s_objects("Deployment") + _k8s_objects("StatefulSet")
    names = {d["metadata"]["name"] for d in deployments}
    assert names == {"tollgate-ingest", "tollgate-processor", "tollgate-ledger"}
    for deployment in deployments:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            where = f"{deployment['metadata']['name']}/{container['name']}"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{where}: resources.{bound}"
            assert container["args"][0] == "serve"
            assert container["args"][1] in deployment["metadata"]["name"]


def test_the_processor_is_a_stateful_set_with_a_volume_for_its_rocksdb_state() -> None:
    (processor,) = _k8s_objects("StatefulSet")
    assert processor["metadata"]["name"] == "tollgate-processor"
    (claim,) = processor["spec"]["volumeClaimTemplates"]
    container = processor["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    data_dir = {e["name"]: e.get("value") for e in container["env"]}["TOLLGATE_PROCESSOR_DATA_DIR"]
    assert mounts[claim["metadata"]["name"]] == data_dir


def test_scaling_respects_partitions() -> None:
    deployments = {d["metadata"]["name"]: d for d in _k8s_objects("Deployment") + _k8s_objects("StatefulSet")}
    assert deployments["tollgate-ingest"]["spec"]["replicas"] == 2
    partitions = 6
    assert deployments["tollgate-processor"]["spec"]["replicas"] <= partitions
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in _k8s_objects("HorizontalPodAutoscaler")}
    assert hpas["tollgate-processor"]["spec"]["maxReplicas"] == partitions


def test_ledger_replicas_share_one_consumer_group_within_the_partitions_and_keep_one_up_in_a_drain() -> None:
    (ledger,) = [d for d in _k8s_objects("Deployment") if d["metadata"]["name"] == "tollgate-ledger"]
    assert 2 <= ledger["spec"]["replicas"] <= 6  # the partitions of tollgate.billable.v1
    env = {e["name"]: e["value"] for e in ledger["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TOLLGATE_LEDGER_CONSUMER_GROUP"] == "tollgate-ledger"
    assert "TOLLGATE_LEDGER_PARTITIONS" not in env  # a fixed list would stop the split
    budgets = {b["metadata"]["name"]: b for b in _k8s_objects("PodDisruptionBudget")}
    assert budgets["tollgate-ledger"]["spec"]["maxUnavailable"] == 1


def test_ingest_scales_by_pods_with_one_worker_per_cpu_of_its_limit() -> None:
    (ingest,) = [d for d in _k8s_objects("Deployment") if d["metadata"]["name"] == "tollgate-ingest"]
    container = ingest["spec"]["template"]["spec"]["containers"][0]
    workers = {e["name"]: e["value"] for e in container.get("env", [])}["TOLLGATE_INGEST_WORKERS"]
    assert int(workers) == int(container["resources"]["limits"]["cpu"])
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in _k8s_objects("HorizontalPodAutoscaler")}
    assert hpas["tollgate-ingest"]["spec"]["minReplicas"] == ingest["spec"]["replicas"]


def test_no_secret_values_in_the_kustomization() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
        for document in yaml.safe_load_all((K8S / resource).read_text()):
            assert document.get("kind") != "Secret", f"{resource} ships a Secret; reference one instead"
    assert "secretGenerator" not in kustomization


def test_kustomize_builds() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:  # optional tool: not installed by scripts/install-system.sh
        pytest.skip("kubectl is not installed")
    result = run(kubectl, "kustomize", str(K8S))
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout) if doc]
    assert kinds.count("Deployment") == 2 and kinds.count("StatefulSet") == 1
    assert "HorizontalPodAutoscaler" in kinds
