"""The one place that creates Dask clusters: a real LocalCluster, and the Kubernetes DaskCluster spec.

No Kubernetes exists here: the spec is checked for structure, against the Dask operator's own CRD
schema (shipped in dask-kubernetes), by parsing its container arguments with distributed's own
``dask worker`` / ``dask scheduler`` command-line parsers, and for the absence of credentials.
"""

from __future__ import annotations

import functools
import importlib.resources
import io
import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import dask.config
import numpy as np
import pytest
import yaml
from distributed import Client, wait
from rich.console import Console

from fluxcube import cluster
from fluxcube.errors import InputError

pytest.importorskip("dask_kubernetes", reason="the [kubernetes] extra (dask-kubernetes) is not installed")

PLATFORM = Path(__file__).resolve().parents[1] / "platform"
GiB = 2**30
FAKE_KEY_ID = "FLUXCUBEFAKEKEYID0042"
FAKE_SECRET = "fake/secret+value/never-in-a-spec"


def k8s_env(**extra: str) -> dict[str, str]:
    """A complete kubernetes environment, with credentials set as they would be on a laptop."""
    env = {
        "FLUXCUBE_CLUSTER": "kubernetes",
        "FLUXCUBE_K8S_IMAGE": "registry.example.org/fluxcube:0.1.0",
        "FLUXCUBE_K8S_NAME": "fc-test",
        "FLUXCUBE_K8S_NAMESPACE": "science",
        "FLUXCUBE_K8S_WORKERS": "3",
        "FLUXCUBE_K8S_THREADS": "2",
        "FLUXCUBE_K8S_WORKER_CPU": "1500m",
        "FLUXCUBE_K8S_WORKER_CPU_LIMIT": "2",
        "FLUXCUBE_K8S_WORKER_MEMORY": "6Gi",
        "FLUXCUBE_K8S_WORKER_MEMORY_REQUEST": "5Gi",
        "FLUXCUBE_K8S_WORKER_SCRATCH": "10Gi",
        "FLUXCUBE_K8S_SCHEDULER_MEMORY": "3Gi",
        "FLUXCUBE_K8S_S3_SECRET": "fluxcube-s3",
        "FLUXCUBE_STORE": "s3://fluxcube/stores",
        "FLUXCUBE_S3_ENDPOINT": "https://s3.example.org",
        "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "AWS_SESSION_TOKEN": FAKE_SECRET + "-token",
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def containers(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {part: spec["spec"][part]["spec"]["containers"][0] for part in ("worker", "scheduler")}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container["env"]}


# --------------------------------------------------------------------------------------------------
# Kubernetes spec


def test_spec_structure_resources_and_args() -> None:
    spec = cluster.cluster_spec(cluster.KubeSettings.from_env(k8s_env()))
    assert spec["apiVersion"] == "kubernetes.dask.org/v1"
    assert spec["kind"] == "DaskCluster"
    assert spec["metadata"]["name"] == "fc-test"
    assert spec["metadata"]["namespace"] == "science"
    assert spec["spec"]["worker"]["replicas"] == 3
    c = containers(spec)
    assert {part: x["name"] for part, x in c.items()} == {"worker": "worker", "scheduler": "scheduler"}
    assert {x["image"] for x in c.values()} == {"registry.example.org/fluxcube:0.1.0"}
    assert c["worker"]["resources"] == {
        "requests": {"cpu": "1500m", "memory": "5Gi"},
        "limits": {"cpu": "2", "memory": "6Gi"},
    }
    assert c["scheduler"]["resources"]["limits"]["memory"] == "3Gi"
    # the scheduler Service the operator creates selects the scheduler pod of this cluster
    assert spec["spec"]["scheduler"]["service"]["selector"]["dask.org/cluster-name"] == "fc-test"


def test_worker_args_parse_with_distributed_cli_and_match_the_container_limit() -> None:
    """The args run as `dask worker` of the installed distributed, memory limit == container limit."""
    from distributed.cli.dask_scheduler import main as scheduler_main
    from distributed.cli.dask_worker import main as worker_main

    c = containers(cluster.cluster_spec(cluster.KubeSettings.from_env(k8s_env())))
    commands = {ep.name for ep in entry_points(group="dask_cli")}
    worker_args, scheduler_args = c["worker"]["args"], c["scheduler"]["args"]
    assert worker_args[:2] == ["dask", "worker"] and "worker" in commands
    assert scheduler_args[:2] == ["dask", "scheduler"] and "scheduler" in commands
    params = worker_main.make_context("dask worker", list(worker_args[2:])).params
    assert params["nthreads"] == 2
    assert dask.utils.parse_bytes(params["memory_limit"]) == 6 * GiB  # "6Gi" in the container limit
    assert params["local_directory"] == cluster.SCRATCH
    assert scheduler_main.make_context("dask scheduler", list(scheduler_args[2:])).params["host"] == "0.0.0.0"
    # the spill folder is an emptyDir of the configured size, Dask's max-spill 90 % of it
    pod = cluster.cluster_spec(cluster.KubeSettings.from_env(k8s_env()))["spec"]["worker"]["spec"]
    assert pod["volumes"] == [{"name": "scratch", "emptyDir": {"sizeLimit": "10Gi"}}]
    assert c["worker"]["volumeMounts"] == [{"name": "scratch", "mountPath": "/scratch"}]
    max_spill = env_of(c["worker"])["DASK_DISTRIBUTED__WORKER__MEMORY__MAX_SPILL"]["value"]
    assert int(max_spill) == int(0.9 * 10 * GiB)
    with dask.config.set({"distributed.worker.memory.max-spill": max_spill}):
        assert dask.config.get("distributed.worker.memory.max_spill") == max_spill  # the key Dask reads


def test_environment_forwarded_and_credentials_only_as_secret_references() -> None:
    environ = k8s_env()
    spec = cluster.cluster_spec(cluster.KubeSettings.from_env(environ))
    text = cluster.manifests(cluster.KubeSettings.from_env(environ))
    for value in (FAKE_KEY_ID, FAKE_SECRET, "never-in-a-spec", "-token"):
        assert value not in text
        assert value not in repr(spec)
    c = containers(spec)
    worker = env_of(c["worker"])
    assert worker["FLUXCUBE_STORE"] == {"name": "FLUXCUBE_STORE", "value": "s3://fluxcube/stores"}
    assert worker["FLUXCUBE_S3_ENDPOINT"]["value"] == "https://s3.example.org"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert worker[key] == {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": "fluxcube-s3", "key": key}},
        }
    assert "AWS_SESSION_TOKEN" not in worker
    scheduler = env_of(c["scheduler"])
    assert "AWS_ACCESS_KEY_ID" not in scheduler and scheduler["FLUXCUBE_STORE"]["value"]
    for e in c["worker"]["env"] + c["scheduler"]["env"]:
        if "value" in e:
            assert not cluster._SECRET_LIKE.search(e["name"]), e
    # without a Secret named, no credential variable at all (s3fs then uses the pod's IAM role)
    bare = env_of(
        containers(cluster.cluster_spec(cluster.KubeSettings.from_env(k8s_env(FLUXCUBE_K8S_S3_SECRET=""))))[
            "worker"
        ]
    )
    assert not set(bare) & set(cluster.CREDENTIAL_ENV)


@functools.cache
def _crd_schema(kind: str) -> dict[str, Any]:
    crds = (
        importlib.resources.files("dask_kubernetes")
        / "operator/deployment/helm/dask-kubernetes-operator/crds"
    )
    doc = yaml.load(
        (crds / f"{kind.lower()}.yaml").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )
    assert doc["spec"]["names"]["kind"] == kind
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _pruned(obj: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields Kubernetes would silently drop from ``obj`` (absent from a structural schema)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(obj, dict) and "properties" in schema:
        out = []
        for key, value in obj.items():
            if key not in schema["properties"]:
                out.append(f"{path}.{key}")
            else:
                out += _pruned(value, schema["properties"][key], f"{path}.{key}")
        return out
    if isinstance(obj, list) and "items" in schema:
        return [p for i, item in enumerate(obj) for p in _pruned(item, schema["items"], f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("adaptive", [False, True])
def test_spec_valid_against_the_operators_crd(adaptive: bool) -> None:
    """Validated by jsonschema against the CRD shipped with the operator; no field would be pruned."""
    import jsonschema

    extra = {"FLUXCUBE_K8S_ADAPT_MIN": "2", "FLUXCUBE_K8S_ADAPT_MAX": "9"} if adaptive else {}
    settings = cluster.KubeSettings.from_env(k8s_env(**extra))
    docs = list(yaml.safe_load_all(cluster.manifests(settings)))
    assert [d["kind"] for d in docs] == (["DaskCluster", "DaskAutoscaler"] if adaptive else ["DaskCluster"])
    for doc in docs:
        schema = _crd_schema(doc["kind"])
        body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
        errors = [
            f"{e.json_path}: {e.message[:200]}" for e in jsonschema.Draft7Validator(schema).iter_errors(body)
        ]
        assert errors == []
        assert _pruned(body, schema) == []
    if adaptive:
        assert docs[0]["spec"]["worker"]["replicas"] == 2
        assert docs[1]["spec"] == {"cluster": "fc-test", "minimum": 2, "maximum": 9}


def test_settings_from_dask_config_and_environment_precedence() -> None:
    environ = {"FLUXCUBE_STORE": "s3://b/p", "FLUXCUBE_K8S_THREADS": "4"}
    config = {
        "fluxcube.kubernetes.image": "example.org/fc:1",
        "fluxcube.kubernetes.worker-memory": "3Gi",
        "fluxcube.kubernetes.threads": 1,
    }
    with dask.config.set(config):
        settings = cluster.KubeSettings.from_env(environ)
    assert (settings.image, settings.worker_memory, settings.threads) == ("example.org/fc:1", "3Gi", 4)
    worker = containers(cluster.cluster_spec(settings))["worker"]
    args = worker["args"]
    assert int(args[args.index("--memory-limit") + 1]) == 3 * GiB
    assert worker["resources"]["limits"]["memory"] == "3Gi"


def test_checked_in_example_manifest_is_what_the_generator_writes() -> None:
    """platform/dask/daskcluster.yaml == the generator's output for platform/dask/cluster.env."""
    environ: dict[str, str] = {}
    for line in (PLATFORM / "dask" / "cluster.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            environ[key] = value
    assert cluster.cluster_kind(environ) == "kubernetes"
    generated = list(yaml.safe_load_all(cluster.manifests(cluster.KubeSettings.from_env(environ))))
    checked_in = list(yaml.safe_load_all((PLATFORM / "dask" / "daskcluster.yaml").read_text()))
    assert checked_in == generated


def test_image_dask_config_uses_only_keys_dask_knows() -> None:
    """platform/dask/fluxcube.yaml: every key exists in distributed's defaults; fractions increase."""
    ours = yaml.safe_load((PLATFORM / "dask" / "fluxcube.yaml").read_text())

    def leaves(d: dict[str, Any], prefix: str = "") -> list[str]:
        out = []
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else k
            out += leaves(v, key) if isinstance(v, dict) and not key.endswith("environ") else [key]
        return out

    for key in leaves(ours):
        assert dask.config.get(key, default=KeyError) is not KeyError, f"unknown Dask config key {key}"
    memory = ours["distributed"]["worker"]["memory"]
    assert 0 < memory["target"] < memory["spill"] < memory["pause"] < memory["terminate"] < 1
    # the image puts this file where Dask reads it and creates the spill folder the spec mounts
    dockerfile = (PLATFORM / "image" / "Dockerfile").read_text()
    assert "COPY platform/dask/fluxcube.yaml /etc/dask/fluxcube.yaml" in dockerfile
    assert f"mkdir -p {cluster.SCRATCH}" in dockerfile and "'.[kubernetes]'" in dockerfile


BAD_SETTINGS = [
    ({"FLUXCUBE_K8S_IMAGE": ""}, "FLUXCUBE_K8S_IMAGE", "not set"),
    ({"FLUXCUBE_K8S_IMAGE": "bad image"}, "FLUXCUBE_K8S_IMAGE", "container image"),
    ({"FLUXCUBE_K8S_NAME": "Bad_Name"}, "FLUXCUBE_K8S_NAME", "lower-case"),
    ({"FLUXCUBE_K8S_NAME": "a" * 60}, "FLUXCUBE_K8S_NAME", "at most 53"),
    ({"FLUXCUBE_K8S_NAMESPACE": "Sci"}, "FLUXCUBE_K8S_NAMESPACE", "namespace"),
    ({"FLUXCUBE_K8S_WORKERS": "two"}, "FLUXCUBE_K8S_WORKERS", "whole number"),
    ({"FLUXCUBE_K8S_THREADS": "0"}, "FLUXCUBE_K8S_THREADS", ">= 1"),
    ({"FLUXCUBE_K8S_WORKER_MEMORY": "6GB"}, "FLUXCUBE_K8S_WORKER_MEMORY", "memory quantity"),
    ({"FLUXCUBE_K8S_WORKER_MEMORY": "6 Gi"}, "FLUXCUBE_K8S_WORKER_MEMORY", "memory quantity"),
    ({"FLUXCUBE_K8S_WORKER_MEMORY": "100Mi"}, "FLUXCUBE_K8S_WORKER_MEMORY", "256Mi"),
    (
        {"FLUXCUBE_K8S_WORKER_MEMORY_REQUEST": "7Gi"},
        "FLUXCUBE_K8S_WORKER_MEMORY_REQUEST",
        "at most the limit",
    ),
    ({"FLUXCUBE_K8S_WORKER_CPU": "3"}, "FLUXCUBE_K8S_WORKER_CPU_LIMIT", "at least the request"),
    ({"FLUXCUBE_K8S_WORKER_CPU": "-1"}, "FLUXCUBE_K8S_WORKER_CPU", "greater than zero"),
    ({"FLUXCUBE_K8S_SCHEDULER_CPU": "lots"}, "FLUXCUBE_K8S_SCHEDULER_CPU", "CPU quantity"),
    ({"FLUXCUBE_K8S_ADAPT_MIN": "2"}, "FLUXCUBE_K8S_ADAPT_MAX", "both a minimum and a maximum"),
    ({"FLUXCUBE_K8S_ADAPT_MIN": "5", "FLUXCUBE_K8S_ADAPT_MAX": "2"}, "FLUXCUBE_K8S_ADAPT_MAX", "at least"),
    ({"FLUXCUBE_K8S_S3_SECRET": "my secret"}, "FLUXCUBE_K8S_S3_SECRET", "Secret name"),
    ({"FLUXCUBE_STORE": "./fluxcube-data"}, "FLUXCUBE_STORE", "object-storage URL"),
    ({"FLUXCUBE_STORE": None}, "FLUXCUBE_STORE", "object-storage URL"),
]


@pytest.mark.parametrize(("change", "names", "says"), BAD_SETTINGS)
def test_invalid_settings_name_the_setting_and_what_was_expected(
    change: dict[str, str | None], names: str, says: str
) -> None:
    environ = k8s_env()
    for key, value in change.items():
        if value is None:
            environ.pop(key)
        else:
            environ[key] = value
    with pytest.raises(InputError) as err:
        cluster.cluster_spec(cluster.KubeSettings.from_env(environ))
    assert names in str(err.value) and says in str(err.value)


def test_credentials_cannot_be_passed_by_value() -> None:
    with pytest.raises(InputError, match=r"looks like a credential.*FLUXCUBE_K8S_S3_SECRET"):
        cluster.KubeSettings(image="example.org/fc:1", env={"AWS_SECRET_ACCESS_KEY": FAKE_SECRET})


def test_cluster_kind() -> None:
    assert cluster.cluster_kind({}) == "local"
    assert cluster.cluster_kind({"FLUXCUBE_CLUSTER": "Kubernetes"}) == "kubernetes"
    with pytest.raises(InputError, match=r"FLUXCUBE_CLUSTER.*'yarn'.*local, kubernetes"):
        cluster.cluster_kind({"FLUXCUBE_CLUSTER": "yarn"})


def test_kubernetes_client_without_a_kubernetes_context_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The KubeCluster is only created when connecting; with no context that says so, quickly."""
    if Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists():
        pytest.skip("running inside a Kubernetes pod: a service account is a context")
    for key, value in k8s_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with (
        pytest.raises(RuntimeError, match="could not create Dask cluster 'fc-test' on Kubernetes"),
        cluster.client(),
    ):
        pass


# --------------------------------------------------------------------------------------------------
# Local cluster and progress


@pytest.fixture(scope="module")
def local_client() -> Any:
    """A real LocalCluster from the environment settings: 2 workers, 2 threads, 300 MiB each."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLUXCUBE_CLUSTER", "local")
        mp.setenv("FLUXCUBE_DASK_WORKERS", "2")
        mp.setenv("FLUXCUBE_DASK_THREADS", "2")
        mp.setenv("FLUXCUBE_DASK_MEMORY", "300MiB")
        with cluster.client() as c:
            yield c


def test_local_cluster_workers_have_the_configured_memory_and_threads(local_client: Any) -> None:
    def seen_by_worker(dask_worker: Any) -> tuple[int, int, int]:
        return dask_worker.memory_manager.memory_limit, dask_worker.state.nthreads, os.getpid()

    seen = local_client.run(seen_by_worker)
    assert len(seen) == 2
    assert {(m, t) for m, t, _ in seen.values()} == {(300 * 2**20, 2)}
    assert len({pid for _, _, pid in seen.values()} | {os.getpid()}) == 3  # separate processes

    def meet(me: str, other: str) -> bool:
        """Signal, then wait for the other task: both True only if they run at the same time."""
        from distributed import Event

        Event(me).set()
        return Event(other).wait(timeout=5)

    # two tasks on one worker meet: its two threads really run tasks at once
    worker = next(iter(seen))
    a = local_client.submit(meet, "a", "b", pure=False, workers=[worker], allow_other_workers=False)
    b = local_client.submit(meet, "b", "a", pure=False, workers=[worker], allow_other_workers=False)
    assert local_client.gather([a, b]) == [True, True]


@pytest.mark.parametrize(
    ("env", "names"),
    [({"FLUXCUBE_DASK_MEMORY": "lots"}, "FLUXCUBE_DASK_MEMORY"), ({"FLUXCUBE_DASK_THREADS": "0"}, "THREADS")],
)
def test_local_cluster_bad_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], names: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(InputError, match=names):
        cluster.local_cluster(n_workers=1)


def quiet_progress() -> Any:
    return cluster.progress_bar(console=Console(file=io.StringIO(), width=100))


def test_track_yields_every_future_and_counts_them(local_client: Any) -> None:
    futures = local_client.map(lambda x: x * x, range(7), pure=False)
    bar = quiet_progress()
    with bar:
        results = sorted(f.result() for f in cluster.track(futures, "squares", progress=bar))
    assert results == [x * x for x in range(7)]
    (task,) = bar.tasks
    assert (task.description, task.total, task.completed) == ("squares", 7, 7)


def test_compute_with_progress_counts_the_graphs_tasks(local_client: Any) -> None:
    rng = np.random.default_rng(6)
    values = rng.normal(size=(400, 300))
    arr = da.from_array(values, chunks=(100, 100))
    bar = quiet_progress()
    with bar:
        total, mean = cluster.compute(arr.sum(), arr.mean(axis=0), client=local_client, progress=bar)
    np.testing.assert_allclose(total, values.sum())
    np.testing.assert_allclose(mean, values.mean(axis=0))
    (task,) = bar.tasks
    assert task.total is not None and task.total >= 12  # at least one task per chunk
    assert task.completed == task.total


def test_compute_with_progress_raises_the_tasks_error(local_client: Any) -> None:
    def boom(block: np.ndarray) -> np.ndarray:
        raise ValueError("bad block")

    arr = da.ones((10, 10), chunks=5).map_blocks(boom, dtype=float)
    bar = quiet_progress()
    with bar, pytest.raises(ValueError, match="bad block"):
        cluster.compute(arr.sum(), client=local_client, progress=bar)


@pytest.mark.slow
def test_worker_spills_to_disk_instead_of_growing_past_its_memory_limit() -> None:
    """10 x 32 MB of persisted chunks on one 300 MiB worker: kept in memory only up to Dask's target."""
    limit = 300 * 2**20
    with cluster.local_cluster(n_workers=1, memory_limit="300MiB") as lc, Client(lc) as c:
        arr = da.random.default_rng(1).random((10 * 4000, 1000), chunks=(4000, 1000))  # 32 MB a chunk
        arr = arr.persist()
        wait(arr)

        def held(dask_worker: Any) -> tuple[int, int, int]:
            data = dask_worker.data
            return int(data.fast.total_weight), len(data.slow), dask_worker.memory_manager.memory_limit

        ((fast, spilled, seen_limit),) = c.run(held).values()
        assert seen_limit == limit
        assert fast <= dask.config.get("distributed.worker.memory.target") * limit
        assert spilled >= 10 - int(0.6 * limit // 32e6)  # the rest of the chunks went to disk
        assert arr.nbytes > limit and float(arr.mean().compute()) == pytest.approx(0.5, abs=0.01)
