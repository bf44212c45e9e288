"""The Helm values (docker/k8s/values.yaml) against the official chart's schema and dagster-k8s itself: whoever can
launch a run cannot shape its pods (issue 29, item 5)."""

import json
import textwrap
from pathlib import Path

import dagster as dg
import jsonschema
import pytest
import yaml
from dagster_k8s import construct_dagster_k8s_job
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import get_user_defined_k8s_config

from titlegen_assets.defs.resources import step_executor
from titlegen_assets.deploy.gpu import GPU_OP_TAGS

REPO = Path(__file__).parents[1]
K8S = REPO / "docker" / "k8s"
VALUES = yaml.safe_load((K8S / "values.yaml").read_text())
NAMESPACE = yaml.safe_load((K8S / "namespace.yaml").read_text())
SCHEMA = json.loads((Path(__file__).parent / "data" / "dagster_chart" / "values.schema.json").read_text())
LAUNCHER = VALUES["runLauncher"]["config"]["customRunLauncher"]
DEPLOYMENT = VALUES["dagster-user-deployments"]["deployments"][0]


def offline(schema):
    """The chart's schema without its $refs to kubernetesjsonschema.dev (unreachable here): a Kubernetes object keeps
    the JSON type written beside the $ref (data/dagster_chart/README.md)."""
    if isinstance(schema, dict):
        return {key: offline(value) for key, value in schema.items()
                if not (key == "$ref" and value.startswith("https://kubernetesjsonschema.dev/"))}
    return [offline(item) for item in schema] if isinstance(schema, list) else schema


def chart_errors(values, definition=None, overlay=False):
    """What Helm's schema check would say. ``overlay``: values.yaml is merged over the chart's own defaults before
    Helm checks it, and those defaults supply the keys required outside lists, so ``required`` is not checked."""
    schema = SCHEMA if definition is None else {"$ref": f"#/definitions/{definition}",
                                                "definitions": SCHEMA["definitions"]}
    validator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"required": lambda *_: ()}) if overlay \
        else jsonschema.Draft7Validator
    errors = validator(offline(schema)).iter_errors(values)
    return [f"{'.'.join(map(str, error.absolute_path))}: {error.message}" for error in errors]


def test_values_pass_the_charts_schema():
    assert chart_errors(VALUES, overlay=True) == []
    # lists replace the chart's defaults whole, so each item must be complete
    assert chart_errors(DEPLOYMENT, "UserDeployment") == []
    assert chart_errors(LAUNCHER, "ConfigurableClass") == []


def test_the_charts_k8s_launcher_settings_have_no_allowlist_so_the_launcher_is_configured_whole():
    """Why runLauncher is a CustomRunLauncher: the chart refuses the allowlist under k8sRunLauncher."""
    refused = {**VALUES, "runLauncher": {"type": "K8sRunLauncher", "config": {"k8sRunLauncher": {
        "onlyAllowUserDefinedK8sConfigFields": {}}}}}
    assert any("onlyAllowUserDefinedK8sConfigFields" in error for error in chart_errors(refused, overlay=True))
    assert (VALUES["runLauncher"]["type"], LAUNCHER["module"], LAUNCHER["class"]) == \
        ("CustomRunLauncher", "dagster_k8s", "K8sRunLauncher")


@pytest.fixture
def launcher(tmp_path):
    """The run launcher exactly as values.yaml configures it, loaded by Dagster, pointed at a kubeconfig instead of
    the cluster it would run in (nothing is sent: pods are only built)."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Config
        clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
        users: [{name: none, user: {token: none}}]
        contexts: [{name: none, context: {cluster: none, user: none}}]
        current-context: none
        """))
    config = {**LAUNCHER["config"], "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    overrides = {"run_launcher": {"module": LAUNCHER["module"], "class": LAUNCHER["class"], "config": config}}
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance.run_launcher


PRIVILEGED = {"container_config": {"security_context": {"privileged": True, "run_as_user": 0}}}
HOST_PATH = {"pod_spec_config": {"volumes": [{"name": "node", "host_path": {"path": "/"}}]}}
OTHER_SECRET = {"container_config": {"env_from": [{"secret_ref": {"name": "another-teams-secret"}}]}}
OTHER_ACCOUNT = {"pod_spec_config": {"service_account_name": "titlegen-dagster", "host_network": True}}


@pytest.mark.parametrize("tag", [PRIVILEGED, HOST_PATH, OTHER_SECRET, OTHER_ACCOUNT])
def test_a_dagster_k8s_config_run_tag_is_refused_not_merged(launcher, tag):
    run = dg.DagsterRun(job_name="all_assets", tags={"dagster-k8s/config": json.dumps(tag)})
    with pytest.raises(Exception, match="violated the allowed list"):
        K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)


def test_the_code_location_hands_runs_no_kubernetes_config():
    """The chart's includeConfigInLaunchedRuns would put the code location's env, Secrets and service account in
    each run's user-defined config, which an allowlist closed to run tags must then refuse: it is off, and run pods
    take the same environment from the run launcher."""
    assert DEPLOYMENT["includeConfigInLaunchedRuns"] == {"enabled": False}
    assert LAUNCHER["config"]["only_allow_user_defined_k8s_config_fields"] == {}
    assert LAUNCHER["config"]["run_k8s_config"]["container_config"]["env"] == DEPLOYMENT["env"]
    assert LAUNCHER["config"]["env_secrets"] == [secret["name"] for secret in DEPLOYMENT["envSecrets"]]


def restricted_pod(pod):
    """Pod Security Admission "restricted" (Kubernetes' Pod Security Standards) for the pod-level context."""
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}


def restricted_container(container):
    assert container["allowPrivilegeEscalation"] is False and container.get("privileged") is not True
    assert container["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize("where", ["user deployment", "webserver", "daemon", "run and step pods"])
def test_every_pod_the_values_make_passes_pod_security_restricted(where):
    pod, container = {
        "user deployment": (DEPLOYMENT["podSecurityContext"], DEPLOYMENT["securityContext"]),
        "webserver": (VALUES["dagsterWebserver"]["podSecurityContext"], VALUES["dagsterWebserver"]["securityContext"]),
        "daemon": (VALUES["dagsterDaemon"]["podSecurityContext"], VALUES["dagsterDaemon"]["securityContext"]),
        "run and step pods": (LAUNCHER["config"]["run_k8s_config"]["pod_spec_config"]["securityContext"],
                              LAUNCHER["config"]["run_k8s_config"]["container_config"]["securityContext"]),
    }[where]
    restricted_pod(pod)
    restricted_container(container)


def test_run_and_gpu_step_pods_built_by_dagster_k8s_are_restricted(launcher):
    """The pod specs dagster-k8s builds from these values: a run pod, and a GPU step pod (the run launcher's config,
    as the k8s_job_executor starts from it, plus the GPU op tag) keep the security context and the artifact root."""
    run = dg.DagsterRun(job_name="all_assets")
    run_context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
    step_context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=False).merge(
        K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(
            {key: value if isinstance(value, str) else json.dumps(value) for key, value in GPU_OP_TAGS.items()})))
    for context in (run_context, step_context):
        job = construct_dagster_k8s_job(context.get_k8s_job_config("registry.example.com/titlegen:1", launcher),
                                        ["dagster"], "job", user_defined_k8s_config=context.run_k8s_config)
        pod = job.spec.template.spec
        [container] = pod.containers
        assert pod.security_context.run_as_non_root and pod.security_context.seccomp_profile.type == "RuntimeDefault"
        assert container.security_context.allow_privilege_escalation is False
        assert container.security_context.capabilities.drop == ["ALL"]
        assert all(volume.host_path is None for volume in pod.volumes)
        assert {"name": "TITLEGEN_HOME", "value": "/artifacts"} in [{"name": e.name, "value": e.value}
                                                                    for e in container.env]
    assert container.resources.limits == {"nvidia.com/gpu": "1"}


@pytest.mark.parametrize("executor_config", [
    {"step_k8s_config": HOST_PATH}, {"volumes": [{"name": "node", "host_path": {"path": "/"}}]},
    {"env_secrets": ["another-teams-secret"]}, {"service_account_name": "titlegen-dagster"},
])
def test_the_step_executor_takes_no_run_config(monkeypatch, executor_config):
    monkeypatch.setenv("TITLEGEN_EXECUTOR", "k8s")

    @dg.asset
    def one():
        return 1

    job = dg.Definitions(assets=[one], executor=step_executor()).resolve_implicit_global_asset_job_def()
    dg.validate_run_config(job, {})
    with pytest.raises(dg.DagsterInvalidConfigError, match="unexpected config entry"):
        dg.validate_run_config(job, {"execution": {"config": executor_config}})


def test_the_namespace_enforces_pod_security_restricted_where_the_launcher_starts_pods():
    assert NAMESPACE["kind"] == "Namespace"
    assert NAMESPACE["metadata"]["name"] == LAUNCHER["config"]["job_namespace"]
    labels = NAMESPACE["metadata"]["labels"]
    assert {mode: labels[f"pod-security.kubernetes.io/{mode}"] for mode in ("enforce", "warn", "audit")} == \
        dict.fromkeys(("enforce", "warn", "audit"), "restricted")


def test_the_gpu_pool_limit_matches_the_docker_stacks():
    compose_instance = yaml.safe_load((REPO / "docker" / "dagster.yaml").read_text())
    assert VALUES["concurrency"]["pools"]["defaultLimit"] == compose_instance["concurrency"]["pools"]["default_limit"]
