"""The production configs in deploy/ are checked with Dagster's own config validation.

Dagster has no public API that validates a ``dagster.yaml`` (or a configurable class's config)
without building the instance, which would connect to Postgres and to a Kubernetes cluster.
So these TESTS use Dagster's private helpers, the ones ``DagsterInstance`` itself loads its
config with: ``dagster._core.instance.config.dagster_instance_config`` (the instance schema)
and ``dagster._config.validate_config`` / ``process_config`` (each class's ``config_type()``,
with ``{env: ...}`` resolved). ``ConfigurableClassData`` is how the instance turns a
``module``/``class``/``config`` entry into an object. Production code never imports any of
them (house rule 8).
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import process_config, validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import ConfigurableClassData

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DAGSTER_YAML = DEPLOY / "dagster.yaml"
VALUES_YAML = DEPLOY / "helm" / "values.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"

DUMMY_ENV = {
    "DAGSTER_PG_HOST": "pg.example.internal",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "dummy-password",
    "DAGSTER_K8S_JOB_NAMESPACE": "amazoniax-runs",
    "AMAZONIAX_IMAGE": "registry.example.com/amazoniax/user-code:test",
    "DAGSTER_K8S_SERVICE_ACCOUNT": "dagster",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql-secret",
}


@pytest.fixture()
def deploy_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in DUMMY_ENV.items():
        monkeypatch.setenv(key, value)
    return DUMMY_ENV


@pytest.fixture()
def instance_config(tmp_path: Path, deploy_env: dict[str, str]) -> dict[str, Any]:
    """deploy/dagster.yaml as DagsterInstance loads it from DAGSTER_HOME (schema-validated)."""
    shutil.copyfile(DAGSTER_YAML, tmp_path / "dagster.yaml")
    config, custom_instance_class = dagster_instance_config(str(tmp_path))
    assert custom_instance_class is None
    return dict(config)


def _env_refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_refs(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node)) if node else set()
    return set()


def _resolve(section: dict[str, Any]) -> tuple[type, dict[str, Any]]:
    """Import a configurable class like the instance does and process its config."""
    cls = getattr(importlib.import_module(section["module"]), section["class"])
    config = section.get("config", {})
    validated = validate_config(cls.config_type(), config)
    assert validated.success, [e.message for e in validated.errors]
    processed = process_config(cls.config_type(), config)  # resolves {env: ...}
    assert processed.success, [e.message for e in processed.errors]
    return cls, dict(processed.value)


# --------------------------------------------------------------------------- dagster.yaml


def test_dagster_yaml_passes_the_instance_schema(instance_config: dict[str, Any]) -> None:
    assert set(instance_config) >= {"storage", "run_coordinator", "run_launcher", "run_monitoring"}


def test_every_env_reference_is_one_the_readme_names() -> None:
    refs = _env_refs(yaml.safe_load(DAGSTER_YAML.read_text()))
    assert refs == set(DUMMY_ENV)
    readme = (DEPLOY / "README.md").read_text()
    assert all(name in readme for name in refs)


def test_storage_is_postgres_from_env(instance_config: dict[str, Any]) -> None:
    from dagster_postgres import DagsterPostgresStorage
    from dagster_postgres.utils import pg_url_from_config

    postgres = instance_config["storage"]["postgres"]
    processed = process_config(DagsterPostgresStorage.config_type(), postgres)
    assert processed.success, [e.message for e in processed.errors]
    url = pg_url_from_config(processed.value)
    assert url.startswith("postgresql://dagster:dummy-password@pg.example.internal:5432/dagster")


def test_storage_without_its_env_fails(
    instance_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_postgres import DagsterPostgresStorage

    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    processed = process_config(
        DagsterPostgresStorage.config_type(), instance_config["storage"]["postgres"]
    )
    assert not processed.success
    assert "DAGSTER_PG_PASSWORD" in " ".join(e.message for e in processed.errors)


def test_run_coordinator_is_queued_with_the_limits(instance_config: dict[str, Any]) -> None:
    from dagster import QueuedRunCoordinator

    cls, config = _resolve(instance_config["run_coordinator"])
    assert cls is QueuedRunCoordinator
    assert config["max_concurrent_runs"] == 20
    assert config["tag_concurrency_limits"] == [
        {"key": "amazoniax/site", "value": {"applyLimitPerUniqueValue": True}, "limit": 2}
    ]
    # As the instance builds it (no I/O for this class): module, class and config together.
    section = instance_config["run_coordinator"]
    data = ConfigurableClassData(
        section["module"], section["class"], yaml.safe_dump(section["config"])
    )
    coordinator = data.rehydrate(QueuedRunCoordinator)
    queue = coordinator.get_run_queue_config()
    assert queue is not None and queue.max_concurrent_runs == 20


def test_run_launcher_is_k8s_and_its_config_resolves(instance_config: dict[str, Any]) -> None:
    from dagster_k8s import K8sRunLauncher

    cls, config = _resolve(instance_config["run_launcher"])
    assert cls is K8sRunLauncher
    assert config["job_namespace"] == "amazoniax-runs"
    assert config["job_image"] == DUMMY_ENV["AMAZONIAX_IMAGE"]
    assert config["instance_config_map"] == "dagster-instance"
    assert config["env_secrets"] == ["amazoniax-env"]
    assert config["load_incluster_config"] is True


def test_run_launcher_config_is_checked_for_real() -> None:
    """The validation above is not vacuous: a wrong field is refused."""
    from dagster_k8s import K8sRunLauncher

    result = validate_config(
        K8sRunLauncher.config_type(), {"instance_config_map": "x", "job_namespce": "typo"}
    )
    assert not result.success


def test_run_monitoring_fails_runs_after_sixty_minutes(instance_config: dict[str, Any]) -> None:
    monitoring = instance_config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["max_runtime_seconds"] == 3600


def test_no_secret_is_written_into_dagster_yaml() -> None:
    data = yaml.safe_load(DAGSTER_YAML.read_text())
    password = data["storage"]["postgres"]["postgres_db"]["password"]
    assert password == {"env": "DAGSTER_PG_PASSWORD"}


# --------------------------------------------------------------------------- Helm values


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    loaded = yaml.safe_load(VALUES_YAML.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_helm_user_deployment_serves_this_code_location(values: dict[str, Any]) -> None:
    # The chart's key is "dagster-user-deployments" (DagsterHelmValues.dagsterUserDeployments).
    user = values["dagster-user-deployments"]
    assert user["enabled"] is True and user["enableSubchart"] is True
    deployment = user["deployments"][0]
    assert set(deployment["image"]) >= {"repository", "tag", "pullPolicy"}
    assert isinstance(deployment["image"]["tag"], str)  # a number would be rendered wrong
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == _module_name()
    assert deployment["port"] == 3030
    assert {"name": "amazoniax-env"} in deployment["envSecrets"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True


def test_helm_postgres_is_external_with_a_secret(values: dict[str, Any]) -> None:
    assert values["postgresql"]["enabled"] is False
    assert set(values["postgresql"]) >= {
        "postgresqlHost",
        "postgresqlUsername",
        "postgresqlDatabase",
        "service",
    }
    assert "postgresqlPassword" not in values["postgresql"]
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]


def test_helm_run_launcher_and_coordinator_match_dagster_yaml(values: dict[str, Any]) -> None:
    instance = yaml.safe_load(DAGSTER_YAML.read_text())
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    k8s = launcher["config"]["k8sRunLauncher"]
    assert [s["name"] for s in k8s["envSecrets"]] == instance["run_launcher"]["config"][
        "env_secrets"
    ]
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    expected = instance["run_coordinator"]["config"]
    assert queued["maxConcurrentRuns"] == expected["max_concurrent_runs"] == 20
    assert queued["tagConcurrencyLimits"] == expected["tag_concurrency_limits"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["maxRuntimeSeconds"] == instance["run_monitoring"]["max_runtime_seconds"]


def test_helm_values_hold_no_secret_values(values: dict[str, Any]) -> None:
    text = VALUES_YAML.read_text()
    assert not re.search(r"(?im)^\s*[\w-]*(password|secret_access_key|secret_key)\s*:\s*\S", text)


# --------------------------------------------------------------------------- Dockerfile


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _module_name() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    name: str = pyproject["tool"]["dagster"]["module_name"]
    return name


def test_dockerfile_builds_from_the_lock_on_python_311_slim() -> None:
    steps = _dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert "uv sync --frozen" in runs
    assert "pip install" not in runs


def test_dockerfile_serves_the_definitions() -> None:
    cmd = [arg for op, arg in _dockerfile_instructions() if op == "CMD"]
    assert len(cmd) == 1
    argv = json.loads(cmd[0])
    assert argv[:3] == ["dagster", "api", "grpc"]
    assert (
        argv[argv.index("--module-name") + 1] == _module_name() == "amazoniax_dagster.definitions"
    )


def test_dockerfile_bakes_in_no_secrets() -> None:
    for op, arg in _dockerfile_instructions():
        if op in {"ENV", "ARG"}:
            assert not re.search(r"(?i)secret|password|token|access_key", arg), arg
        if op == "COPY":
            assert ".env" not in arg and ".amazoniax" not in arg


# --------------------------------------------------------------------------- Python fetcher pods

FETCHER_PODS_YAML = DEPLOY / "python-fetcher-pods.yaml"


@pytest.fixture(scope="module")
def fetcher_pods() -> dict[str, dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all(FETCHER_PODS_YAML.read_text()) if d]
    by_kind = {d["kind"]: d for d in documents}
    assert set(by_kind) == {"PodTemplate", "NetworkPolicy"}
    return by_kind


def test_fetcher_pod_spec_is_one_pipes_k8s_client_accepts(
    fetcher_pods: dict[str, dict[str, Any]],
) -> None:
    """PipesK8sClient builds its pod from base_pod_meta/base_pod_spec with these helpers (they
    refuse unknown fields), so a typo in the template fails here and not in production."""
    from dagster_k8s.pipes import build_pod_body

    template = fetcher_pods["PodTemplate"]["template"]
    pod = build_pod_body(
        pod_name="fetcher-test",
        image="registry.example.com/amazoniax/user-code:test",
        command=["python", "-m", "amazoniax_dagster.fetchers.sandbox"],
        env_vars={"DAGSTER_PIPES_CONTEXT": "x", "DAGSTER_PIPES_MESSAGES": "y"},
        base_pod_meta=template["metadata"],
        base_pod_spec=template["spec"],
    )
    container = pod.spec.containers[0]
    assert container.command == ["python", "-m", "amazoniax_dagster.fetchers.sandbox"]
    assert {e.name for e in container.env} == {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}
    assert pod.metadata.labels["amazoniax/role"] == "python-fetcher"


def test_fetcher_pods_get_no_credentials_and_no_privileges(
    fetcher_pods: dict[str, dict[str, Any]],
) -> None:
    spec = fetcher_pods["PodTemplate"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC"))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert not security.get("privileged")
    assert "envFrom" not in container and "env" not in container
    text = json.dumps(spec).lower()
    assert "secret" not in text and "amazoniax-env" not in text and "serviceaccountname" not in text
    # The only writable place is a size-limited /tmp (the sandbox's job folders).
    (volume,) = spec["volumes"]
    assert volume["emptyDir"]["sizeLimit"]
    assert container["volumeMounts"] == [{"name": volume["name"], "mountPath": "/tmp"}]


def test_fetcher_pods_have_resource_limits_and_a_deadline(
    fetcher_pods: dict[str, dict[str, Any]],
) -> None:
    from amazoniax_dagster.fetchers.sandbox import SandboxLimits

    spec = fetcher_pods["PodTemplate"]["template"]["spec"]
    resources = spec["containers"][0]["resources"]
    for section in ("requests", "limits"):
        assert set(resources[section]) == {"cpu", "memory", "ephemeral-storage"}
    assert spec["activeDeadlineSeconds"] > SandboxLimits().wall_seconds
    assert resources["limits"]["memory"] == "1536Mi"  # > SandboxLimits().memory_bytes (1 GiB)
    assert SandboxLimits().memory_bytes < 1536 * 1024**2


def _egress_allows(policy: dict[str, Any], address: str) -> bool:
    """Whether any ipBlock egress rule of ``policy`` lets traffic reach ``address``."""
    import ipaddress

    ip = ipaddress.ip_address(address)
    for rule in policy["spec"]["egress"]:
        for peer in rule.get("to", []):
            block = peer.get("ipBlock")
            if block is None or ip.version != ipaddress.ip_network(block["cidr"]).version:
                continue
            excepted = any(ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))
            if ip in ipaddress.ip_network(block["cidr"]) and not excepted:
                return True
    return False


def test_fetcher_network_policy_selects_the_pods_and_denies_ingress(
    fetcher_pods: dict[str, dict[str, Any]],
) -> None:
    policy = fetcher_pods["NetworkPolicy"]
    labels = fetcher_pods["PodTemplate"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert policy["spec"]["ingress"] == []
    dns = policy["spec"]["egress"][0]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert "ipBlock" not in json.dumps(dns)


@pytest.mark.parametrize(
    "address",
    [
        "10.96.0.1",  # a cluster's kubernetes service
        "10.244.3.7",  # a pod
        "172.20.0.10",
        "192.168.1.1",
        "127.0.0.1",
        "100.64.0.1",
        "169.254.1.1",
        "::1",
        "fd12:3456::1",
        "fe80::1",
        "::ffff:169.254.169.254",
    ],
)
def test_fetcher_network_policy_denies_cluster_and_private_ranges(
    fetcher_pods: dict[str, dict[str, Any]], address: str
) -> None:
    assert not _egress_allows(fetcher_pods["NetworkPolicy"], address)


def test_fetcher_network_policy_denies_every_metadata_address_netpolicy_knows(
    fetcher_pods: dict[str, dict[str, Any]],
) -> None:
    from amazoniax_dagster.core.netpolicy import METADATA_ADDRESSES

    for address in METADATA_ADDRESSES:
        assert not _egress_allows(fetcher_pods["NetworkPolicy"], str(address)), address


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_fetcher_network_policy_lets_public_sites_through(
    fetcher_pods: dict[str, dict[str, Any]], address: str
) -> None:
    assert _egress_allows(fetcher_pods["NetworkPolicy"], address)
