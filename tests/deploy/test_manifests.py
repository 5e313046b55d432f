"""The Dockerfile, the compose file and the Kubernetes base are valid and say what they must.

No container engine or cluster is needed: hadolint, Docker Compose (``config``), kubectl
(``kustomize``) and kubernetes-validate (``--strict``, offline schemas) are pinned in
requirements.lock, so these tests always run. The semantic checks read the rendered objects
(what ``kubectl apply -k`` would send), not the source files.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import (
    COMPOSE_FILE,
    DOCKERFILE,
    GATEWAY_LABELS,
    GRPC_PORT,
    KUSTOMIZE_DIR,
    METRICS_PORT,
    ROOT,
    compose_binary,
    load_documents,
    render_kustomization,
    run,
    tool,
    tool_env,
)

# Schemas bundled with kubernetes-validate start at 1.25; native gRPC probes are GA in 1.27.
K8S_VERSIONS = ["1.27.0", "1.30.0", "1.37.0"]

# Dockerfile ------------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = run([tool("hadolint"), "--no-color", DOCKERFILE])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_really_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    """The gate can fail: an unpinned apt-get and a shell-form CMD are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN apt-get update && apt-get install -y curl\n")
    result = run([tool("hadolint"), "--no-color", bad])
    assert result.returncode != 0
    assert "DL3008" in result.stdout


def test_dockerfile_is_multi_stage_on_the_slim_base_with_a_venv() -> None:
    instructions = _instructions()
    assert instructions[0] == ("ARG", "BASE=python:3.11-slim")
    froms = [args for kw, args in instructions if kw == "FROM"]
    assert froms == ["${BASE} AS build", "${BASE}"]
    runs = " ".join(args for kw, args in instructions if kw == "RUN")
    assert "python3 -m venv /opt/venv" in runs
    # No heredocs: buildah 1.28 cannot build them.
    assert "<<" not in DOCKERFILE.read_text()


def test_dependencies_are_installed_only_from_hash_checked_locks() -> None:
    pip_installs = [args for kw, args in _instructions() if kw == "RUN" and "pip install" in args]
    assert pip_installs
    for args in pip_installs:
        for command in args.split("&&"):
            if "pip install" not in command:
                continue
            words = shlex.split(command)
            # Either a hash-checked lock, or the locally built wheels with --no-deps --no-index.
            if "-r" in words:
                assert "--require-hashes" in words, command
                assert "--only-binary=:all:" in words, command
                assert words[words.index("-r") + 1] in (
                    "requirements-runtime.lock",
                    "requirements-build.lock",
                )
            else:
                assert {"--no-deps", "--no-index"} <= set(words), command
                assert all(w.startswith("--") or w.endswith(".whl") for w in words[2:]), command


def test_runtime_stage_runs_routerpc_serve_as_uid_10001_with_a_grpc_healthcheck() -> None:
    final = dict(_final_stage())
    assert final["USER"] == "10001:10001"
    assert final["EXPOSE"] == str(GRPC_PORT)
    assert "ROUTERPC_HOST=0.0.0.0" in final["ENV"].split()
    # Exec form, so the Python process is PID 1 and receives SIGTERM itself.
    assert json.loads(final["ENTRYPOINT"]) == ["/opt/venv/bin/routerpc"]
    assert json.loads(final["CMD"]) == ["serve"]
    healthcheck = final["HEALTHCHECK"]
    exec_form = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert exec_form == ["/opt/venv/bin/python", "/app/healthcheck.py"]
    copies = [args for kw, args in _final_stage() if kw == "COPY"]
    assert "deploy/healthcheck.py /app/healthcheck.py" in copies
    assert "--from=build /opt/venv /opt/venv" in copies
    runs = " ".join(args for kw, args in _final_stage() if kw == "RUN")
    assert "--uid 10001" in runs
    assert "pip" not in runs  # nothing is installed in the runtime stage


def test_dockerignore_admits_exactly_what_the_dockerfile_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allowlist: everything is excluded first"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    sources: set[str] = set()
    for keyword, args in _instructions():
        if keyword == "COPY" and not args.startswith("--from"):
            sources.update(part.rstrip("/") for part in args.split()[:-1])
    assert sources == admitted
    for source in sources:
        assert (ROOT / source).exists(), source


def _pins(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", line):
            pins[match.group(1).lower()] = match.group(2)
    return pins


def _names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements
    }


@pytest.mark.parametrize("lock", ["requirements-runtime.lock", "requirements-build.lock"])
def test_image_locks_pin_with_hashes_the_versions_the_suite_tests(lock: str) -> None:
    pins = _pins(ROOT / lock)
    dev = _pins(ROOT / "requirements.lock")
    assert pins
    for name, version in pins.items():
        assert dev.get(name) == version, (
            f"{lock}: {name}=={version}, requirements.lock: {dev.get(name)}"
        )
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / lock).read_text().split("\n", 2)[2])
    for entry in entries:
        if entry.strip() and not entry.startswith("#"):
            assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_runtime_lock_covers_every_declared_runtime_dependency() -> None:
    runtime = set(_pins(ROOT / "requirements-runtime.lock"))
    local = {"routerpc", "routerpc-gateway"}
    for pyproject in (ROOT / "pyproject.toml", ROOT / "client" / "pyproject.toml"):
        declared = _names(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
        missing = declared - local - runtime
        assert not missing, f"{pyproject.relative_to(ROOT)} needs {missing} in the runtime lock"


def test_build_lock_holds_the_build_backend_the_pyprojects_require() -> None:
    build = _pins(ROOT / "requirements-build.lock")
    for pyproject in (ROOT / "pyproject.toml", ROOT / "client" / "pyproject.toml"):
        for requirement in tomllib.loads(pyproject.read_text())["build-system"]["requires"]:
            name, _, version = requirement.partition("==")
            assert build.get(name.lower()) == version, requirement


# Compose ---------------------------------------------------------------------------------------


def _compose_config() -> dict[str, Any]:
    result = run(
        [compose_binary(), "-f", COMPOSE_FILE, "config", "--format", "json"], env=tool_env()
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_compose_config_is_clean() -> None:
    result = run([compose_binary(), "-f", COMPOSE_FILE, "config", "-q"], env=tool_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "warn" not in result.stderr.lower(), result.stderr


def test_compose_binary_really_fails_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  x:\n    image: busybox\n    portz: ['1:1']\n")
    result = run([compose_binary(), "-f", bad, "config", "-q"], env=tool_env())
    assert result.returncode != 0
    assert "portz" in result.stderr


def test_compose_runs_the_gateway_in_front_of_the_emulator_service() -> None:
    services = _compose_config()["services"]
    assert set(services) == {"gateway", "emulator"}
    gateway, emulator = services["gateway"], services["emulator"]
    assert gateway["image"] == emulator["image"]
    assert gateway["build"]["context"] == str(ROOT)
    assert emulator["command"] == ["emulator", "--host", "0.0.0.0", "--port", "8080"]
    assert gateway["command"] == ["serve"]
    env = gateway["environment"]
    assert env["ROUTERPC_UPSTREAM_URL"] == "http://emulator:8080/api/v1"
    # A key is set (a placeholder) so the gateway uses the emulator service, not its own one.
    assert env["OPENROUTER_API_KEY"] == "offline-demo"
    assert "ROUTERPC_EMULATOR" not in env
    assert gateway["ports"] == [
        {
            "mode": "ingress",
            "host_ip": "127.0.0.1",
            "target": GRPC_PORT,
            "published": str(GRPC_PORT),
            "protocol": "tcp",
        }
    ]
    assert "ports" not in emulator  # reachable only on the compose network
    assert gateway["depends_on"]["emulator"]["condition"] == "service_started"


def test_compose_publish_port_can_be_moved() -> None:
    result = run(
        [compose_binary(), "-f", COMPOSE_FILE, "config", "--format", "json"],
        env=tool_env(ROUTERPC_PUBLISH_PORT="50123", ROUTERPC_IMAGE="localhost/routerpc:x"),
    )
    assert result.returncode == 0, result.stderr
    gateway = json.loads(result.stdout)["services"]["gateway"]
    assert gateway["ports"][0]["published"] == "50123"
    assert gateway["image"] == "localhost/routerpc:x"


def test_compose_services_are_hardened_and_health_checked_without_spaces() -> None:
    for name, service in _compose_config()["services"].items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["user"] == "10001:10001", name
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD", name
        # podman 4.3's Docker-compatible API splits healthcheck arguments at spaces.
        assert all(" " not in arg for arg in test), test
        assert test[1:3] == ["/opt/venv/bin/python", "/app/healthcheck.py"]
    # SIGTERM, then drain (1 s) and grace (25 s) before compose kills.
    assert _compose_config()["services"]["gateway"]["stop_grace_period"] == "35s"


# Kubernetes ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kustomize") / "rendered.yaml"
    path.write_text(render_kustomization())
    return path


@pytest.fixture(scope="module")
def objects(rendered: Path) -> dict[str, dict[str, Any]]:
    """Rendered objects by ``Kind/name``."""
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in load_documents(rendered.read_text())}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rendered_kustomization_passes_strict_schema_validation(
    rendered: Path, version: str
) -> None:
    result = run([tool("kubernetes-validate"), "--strict", "-k", version, rendered])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "did not validate" not in result.stdout + result.stderr


def test_strict_validation_really_rejects_a_bad_manifest(rendered: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        rendered.read_text().replace(
            "terminationGracePeriodSeconds: 45",
            "terminationGracePeriodSeconds: 45\n      bogusField: 1",
        )
    )
    result = run([tool("kubernetes-validate"), "--strict", "-k", "1.30.0", broken])
    assert result.returncode != 0
    assert "bogusField" in result.stdout + result.stderr


def test_kustomization_renders_the_expected_objects(objects: dict[str, dict[str, Any]]) -> None:
    assert set(objects) == {
        "ServiceAccount/routerpc",
        "Deployment/routerpc",
        "Service/routerpc",
        "Service/routerpc-headless",
        "HorizontalPodAutoscaler/routerpc",
        "PodDisruptionBudget/routerpc",
        "NetworkPolicy/routerpc",
    }
    for key, obj in objects.items():
        assert GATEWAY_LABELS.items() <= obj["metadata"]["labels"].items(), key


def test_no_secret_is_rendered_and_the_example_holds_only_a_placeholder(
    objects: dict[str, dict[str, Any]],
) -> None:
    assert not any(key.startswith("Secret/") for key in objects)
    kustomization = yaml.safe_load((KUSTOMIZE_DIR / "kustomization.yaml").read_text())
    assert "secret.example.yaml" not in kustomization["resources"]
    assert "secretGenerator" not in kustomization
    example = yaml.safe_load((KUSTOMIZE_DIR / "secret.example.yaml").read_text())
    assert example["kind"] == "Secret"
    assert example["stringData"] == {"api-key": "REPLACE-WITH-YOUR-OPENROUTER-KEY"}


def _deployment(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return objects["Deployment/routerpc"]


def _container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    containers = _deployment(objects)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_deployment_selects_its_own_pods_and_runs_routerpc_serve(
    objects: dict[str, dict[str, Any]],
) -> None:
    deployment = _deployment(objects)
    assert deployment["spec"]["selector"]["matchLabels"] == GATEWAY_LABELS
    assert GATEWAY_LABELS.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    # The HPA owns the replica count.
    assert "replicas" not in deployment["spec"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = _container(objects)
    assert container["image"] == "localhost/routerpc:0.1.0"
    assert container["args"] == ["serve"]
    assert container["ports"] == [
        {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
        {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
    ]
    env = _env(container)
    assert env["ROUTERPC_HOST"] == "0.0.0.0"
    assert env["ROUTERPC_PORT"] == str(GRPC_PORT)
    assert "ROUTERPC_EMULATOR" not in env
    assert env["ROUTERPC_METRICS_PORT"] == str(METRICS_PORT)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)


def test_api_key_comes_from_a_required_secret(objects: dict[str, dict[str, Any]]) -> None:
    key = _env(_container(objects))["OPENROUTER_API_KEY"]
    assert key == {
        "secretKeyRef": {"name": "routerpc-openrouter", "key": "api-key", "optional": False}
    }


def test_resources_have_requests_and_limits(objects: dict[str, dict[str, Any]]) -> None:
    resources = _container(objects)["resources"]
    for part in ("requests", "limits"):
        assert set(resources[part]) == {"cpu", "memory"}, part
    # One worker process per core of the CPU limit.
    assert _env(_container(objects))["ROUTERPC_WORKERS"] == resources["limits"]["cpu"]


@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_probes_are_native_grpc_on_the_grpc_port(
    objects: dict[str, dict[str, Any]], probe: str
) -> None:
    spec = _container(objects)[probe]
    assert spec["grpc"] == {"port": GRPC_PORT}
    assert not {"httpGet", "tcpSocket", "exec"} & set(spec)


def _seconds(value: str) -> float:
    return float(value)


def test_termination_grace_outlasts_pre_stop_drain_and_grace(
    objects: dict[str, dict[str, Any]],
) -> None:
    pod = _deployment(objects)["spec"]["template"]["spec"]
    container = _container(objects)
    env = _env(container)
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "/bin/sleep"  # coreutils is in both base images
    pause = _seconds(pre_stop[1])
    drain, grace = _seconds(env["ROUTERPC_DRAIN_DELAY"]), _seconds(env["ROUTERPC_GRACE_PERIOD"])
    assert pause > 0
    assert drain > 0
    assert grace == 25
    assert pod["terminationGracePeriodSeconds"] > pause + drain + grace
    # Readiness notices NOT_SERVING within the drain delay, so balancers leave before refusals.
    readiness = container["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] <= drain
    # Liveness never kills a pod that is draining (health is NOT_SERVING throughout).
    liveness = container["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > drain + grace


def test_security_context_is_locked_down(objects: dict[str, dict[str, Any]]) -> None:
    pod = _deployment(objects)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    context = _container(objects)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    # A writable /tmp on a read-only root.
    mounts = {m["mountPath"]: m["name"] for m in _container(objects)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_services_route_grpc_to_the_gateway_pods(objects: dict[str, dict[str, Any]]) -> None:
    for name in ("Service/routerpc", "Service/routerpc-headless"):
        spec = objects[name]["spec"]
        assert spec["selector"] == GATEWAY_LABELS, name
        assert [(p["name"], p["port"], p["targetPort"]) for p in spec["ports"]] == [
            ("grpc", GRPC_PORT, "grpc")
        ], name
    assert objects["Service/routerpc"]["spec"]["type"] == "ClusterIP"
    assert "clusterIP" not in objects["Service/routerpc"]["spec"]
    headless = objects["Service/routerpc-headless"]["spec"]
    assert headless["clusterIP"] == "None"
    assert headless.get("publishNotReadyAddresses", False) is False


def test_hpa_and_pdb_target_the_deployment(objects: dict[str, dict[str, Any]]) -> None:
    hpa = objects["HorizontalPodAutoscaler/routerpc"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "routerpc",
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    pdb = objects["PodDisruptionBudget/routerpc"]
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"] == {"matchLabels": GATEWAY_LABELS}
    # The budget can be met while pods move: it never blocks every eviction.
    assert pdb["spec"].get("maxUnavailable", 0) >= 1 or pdb["spec"]["minAvailable"] < 2


def test_network_policy_admits_only_labelled_clients_and_scrapers_on_their_ports(
    objects: dict[str, dict[str, Any]],
) -> None:
    policy = objects["NetworkPolicy/routerpc"]["spec"]
    assert policy["podSelector"] == {"matchLabels": GATEWAY_LABELS}
    assert policy["policyTypes"] == ["Ingress"]  # egress open: DNS + HTTPS to OpenRouter
    clients, scrapers = policy["ingress"]
    assert clients["from"] == [{"podSelector": {"matchLabels": {"routerpc-client": "true"}}}]
    assert clients["ports"] == [{"protocol": "TCP", "port": GRPC_PORT}]
    assert scrapers["from"] == [
        {
            "namespaceSelector": {},
            "podSelector": {"matchLabels": {"routerpc-metrics-scraper": "true"}},
        }
    ]
    assert scrapers["ports"] == [{"protocol": "TCP", "port": METRICS_PORT}]


def test_every_selector_matches_the_pod_template(objects: dict[str, dict[str, Any]]) -> None:
    labels = _deployment(objects)["spec"]["template"]["metadata"]["labels"]

    def selectors() -> Iterator[tuple[str, dict[str, str]]]:
        for key, obj in objects.items():
            spec = obj.get("spec", {})
            if obj["kind"] == "Service":
                yield key, spec["selector"]
            elif "selector" in spec:
                yield key, spec["selector"]["matchLabels"]
            elif "podSelector" in spec:
                yield key, spec["podSelector"]["matchLabels"]

    found = dict(selectors())
    assert len(found) == 5, found  # Deployment, two Services, PDB, NetworkPolicy
    for key, selector in found.items():
        assert selector.items() <= labels.items(), key
