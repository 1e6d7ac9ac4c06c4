"""The image of deploy/container/, built for real and run as deploy/kubernetes/ runs it.

The worker's container is set up from the Deployment and ConfigMap themselves: the user and
group, the read-only root (no tmpfs either), no capabilities, no privilege escalation, the
volumes (emptyDir, the ConfigMap's file, the Ceph Secret's files), the environment, the probe
paths, the preStop command and the termination grace. The test adds only what a cluster would
differ in: a file store volume, its own broker names, free ports (host networking) and a short
drain grace, through the environment. ``imgworker api`` runs beside it the same way. They reach
the host's PostgreSQL (a database of the test's own), RabbitMQ, a throwaway Ceph cluster and a
web server on loopback. Whatever the image writes outside its volumes fails, and is looked for.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from flows.states import ImageStatus, TaskStatus
from tests.support.ceph import Cluster, running_clusters
from tests.support.containers import Container, built_image, podman, running_container
from tests.support.images import MiB, make_sample_qcow2, make_sparse_raw
from tests.support.kubernetes import Mount, WorkerPod
from tests.support.web_source import web_source
from tests.support.workers import Topology, free_port

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.postgres,
    pytest.mark.ceph,
    # Without test.sh's image the first test builds it: cold, minutes on a loaded machine.
    pytest.mark.timeout(900),
]

POD = WorkerPod.load()
#: A file store, which the manifests leave to the operator: a writable volume at its path.
FILE_STORE = "/var/lib/imgworker/stores/archive"
#: [worker] drain_grace_seconds for the test (the ConfigMap's 60 s would only be waited out).
DRAIN_GRACE = 2
BROKER = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image's id (built now unless test.sh built it in the background)."""
    return built_image(tmp_path_factory.mktemp("image"))


def image_user(image: str) -> tuple[int, int]:
    """The image's USER as uid and gid; fails unless both are numeric and not root."""
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).strip()
    assert user, "the image has no USER: it runs as root"
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), f"USER {user!r} is not a numeric uid:gid"
    assert int(uid) != 0, "the image runs as root"
    return int(uid), int(gid)


def image_env(image: str) -> dict[str, str]:
    """The image's ENV."""
    pairs = json.loads(podman("image", "inspect", "--format", "{{json .Config.Env}}", image))
    return dict(pair.split("=", 1) for pair in pairs)


def test_the_image_is_what_the_deployment_expects(image: str) -> None:
    assert POD.user == image_user(image)
    health = json.loads(podman("image", "inspect", "--format", "{{json .HealthCheck}}", image))
    assert health, "no HEALTHCHECK in the image's metadata (built in the OCI format?)"
    assert health["Test"] == ["CMD", "imgworker", "health"], health
    # The probes' port is where the image's worker listens unless told otherwise.
    assert image_env(image)["IMGWORKER_WORKER__HTTP"] == f"0.0.0.0:{POD.http_port}"
    security = POD.security
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    # The CA bundle build.sh lends to pip stays out of the image: only its mount point is left.
    lent = podman(
        "run", "--rm", "--network=host", "--read-only", "--entrypoint=find",
        image, "/etc/xdg", "-type", "f",
    )  # fmt: skip
    assert lent == ""
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image))
    print(f"\nimage {image[:12]}: {size / 1e6:.0f} MB")


def pod_volumes(
    root: Path, owner: tuple[int, int], secrets: dict[str, dict[str, str]]
) -> tuple[dict[Path, str], tuple[Path, ...]]:
    """Host directories standing in for the Deployment's volumes and the test's file store:
    their mount points by host path, and which of them are read-only. An ``emptyDir`` belongs
    to ``owner`` (fsGroup would see to it); a ConfigMap holds its data, a Secret ``secrets``'."""
    mounts: dict[Path, str] = {}
    read_only = []
    for mount in [*POD.mounts, Mount("archive", FILE_STORE, False, "emptyDir", {})]:
        host = root / mount.name
        host.mkdir(parents=True)
        if mount.kind == "emptyDir":
            os.chown(host, *owner)
            files = {}
        elif mount.kind == "configMap":
            files = POD.config_maps[mount.source["name"]]
        elif mount.kind == "secret":
            files = secrets[mount.source["secretName"]]
        else:
            raise AssertionError(f"the test cannot provide volume {mount.name} ({mount.kind})")
        for name, text in files.items():
            (host / name).write_text(text)
        mounts[host] = mount.path
        if mount.read_only:
            read_only.append(host)
    return mounts, tuple(read_only)


def pod_env(secret_values: dict[str, str], pod_name: str) -> dict[str, str]:
    """The Deployment's environment, its Secret references answered from ``secret_values``."""
    env = {}
    for entry in POD.env:
        name = entry["name"]
        if "value" in entry:
            env[name] = entry["value"]
            continue
        source = entry["valueFrom"]
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.name", entry
            env[name] = pod_name
            continue
        key = source["secretKeyRef"]["key"]
        if key in secret_values:
            env[name] = secret_values[key]
        else:
            assert source["secretKeyRef"].get("optional"), f"no value for the secret's {key}"
    return env


def ceph_client_conf(cluster: Cluster) -> str:
    """What an operator gives a client of ``cluster``: its fsid and monitors, nothing else."""
    server = dict(
        line.split(" = ", 1)
        for line in Path(cluster.conf).read_text().splitlines()
        if " = " in line
    )
    auth = "".join(f"auth {kind} required = none\n" for kind in ("cluster", "service", "client"))
    return f"[global]\nfsid = {server['fsid']}\nmon host = {server['mon host']}\n{auth}"


def call(method: str, url: str, body: Any = None, data: bytes | None = None) -> Any:
    """One request to the API; its JSON answer (None when empty); fails on an error status."""
    headers = {"Content-Type": "application/octet-stream"}
    if body is not None:
        data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    try:
        with urlopen(Request(url, data=data, method=method, headers=headers), timeout=30) as r:
            answer = r.read()
    except HTTPError as exc:
        raise AssertionError(f"{method} {url}: {exc.code} {exc.read().decode()}") from exc
    return json.loads(answer) if answer else None


def answers(url: str) -> bool:
    """True when GET url answers 200."""
    try:
        with urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_for(check: Callable[[], bool], what: str, container: Container) -> None:
    """Poll ``check`` until true; fail with the container's logs when it stops or 2 min pass."""
    deadline = time.monotonic() + 120
    while not check():
        if time.monotonic() > deadline or not container.running():
            raise AssertionError(f"{container.name}: {what} never happened:\n{container.logs()}")
        time.sleep(0.2)


def settled(api: str, image_id: str, worker: Container) -> dict[str, Any]:
    """The image once no import holds it any more."""
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.clear()
        seen.update(call("GET", f"{api}/v2/images/{image_id}"))
        return "os_glance_import_task" not in seen and seen["status"] in (
            ImageStatus.ACTIVE,
            ImageStatus.FAILED,
        )

    wait_for(done, f"image {image_id} settling", worker)
    return seen


def create_image(api: str, disk_format: str) -> str:
    """A new image record through the API; its id."""
    body = {"name": "container-test", "disk_format": disk_format, "container_format": "bare"}
    return str(call("POST", f"{api}/v2/images", body)["id"])


def start_import(api: str, image_id: str, method: dict[str, str], stores: list[str]) -> None:
    """``POST /v2/images/{id}/import``."""
    call("POST", f"{api}/v2/images/{image_id}/import", {"method": method, "stores": stores})


def last_task(api: str, image_id: str) -> dict[str, Any]:
    """The image's newest task."""
    return dict(call("GET", f"{api}/v2/images/{image_id}/tasks")["tasks"][-1])


def assert_confined(container: Container, uid: int) -> None:
    """Its process runs as ``uid`` with no capabilities, no way to gain privileges, and a
    seccomp filter, as the Deployment's security context asks."""
    status = container.process_status()
    assert [int(i) for i in status["Uid"].split()] == [uid] * 4, status["Uid"]
    assert int(status["CapEff"], 16) == 0, status["CapEff"]
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"  # filtering


def test_worker_and_api_containers_import_then_drain(
    image: str, tmp_path: Path, postgres_url: str, broker_topology: Topology
) -> None:
    uid, gid = image_user(image)
    www = tmp_path / "www"
    www.mkdir()
    qcow2 = make_sample_qcow2(www / "disk.qcow2", 16 * MiB, 4 * MiB)
    make_sparse_raw(www / "slow.raw", 64 * MiB, [(0, 64 * MiB)])
    worker_port, api_port = free_port(), free_port()
    worker_url, api = f"http://127.0.0.1:{worker_port}", f"http://127.0.0.1:{api_port}"
    environment = pod_env(
        {"database-url": postgres_url, "broker-url": BROKER}, "imgworker-container-test"
    ) | {
        "IMGWORKER_BROKER__EXCHANGE": broker_topology.exchange,
        "IMGWORKER_BROKER__QUEUE": broker_topology.queue,
        "IMGWORKER_BROKER__DEAD_LETTER_EXCHANGE": broker_topology.dead_exchange,
        "IMGWORKER_BROKER__DEAD_LETTER_QUEUE": broker_topology.dead_queue,
        # Host networking: free ports of the host instead of the image's 9480 and 9292.
        "IMGWORKER_WORKER__HTTP": f"127.0.0.1:{worker_port}",
        "IMGWORKER_API__LISTEN": f"127.0.0.1:{api_port}",
        "IMGWORKER_WORKER__DRAIN_GRACE_SECONDS": str(DRAIN_GRACE),
        "IMGWORKER_WORKER__CONCURRENCY": "1",
        "IMGWORKER_STORES__ARCHIVE__TYPE": "file",
        "IMGWORKER_STORES__ARCHIVE__PATH": FILE_STORE,
        # The web source is on loopback, on a port of its own; the host's disk may be small.
        "IMGWORKER_SAFETY__ALLOW_PRIVATE_ADDRESSES": "true",
        "IMGWORKER_SAFETY__ALLOWED_PORTS": "[]",
        "IMGWORKER_SAFETY__STAGING_MIN_FREE_BYTES": "0",
    }
    with (
        running_clusters(1, tmp_path / "ceph-cluster") as (cluster,),
        web_source(www, slow_bytes_per_second=4 * MiB) as source,
    ):
        mounts, read_only = pod_volumes(
            tmp_path / "volumes",
            (uid, gid),
            {"imgworker-ceph": {"central.conf": ceph_client_conf(cluster)}},
        )
        staging = next(host for host, point in mounts.items() if point.endswith("/staging"))
        archive = next(host for host, point in mounts.items() if point == FILE_STORE)
        started = time.monotonic()
        with running_container(
            image, "run", env=environment, volumes=mounts, read_only=read_only
        ) as worker:
            ready = worker_url + POD.probe_path("readinessProbe")
            wait_for(lambda: answers(ready), ready, worker)
            print(f"\nworker container: start to ready {time.monotonic() - started:.1f} s")
            assert answers(worker_url + POD.probe_path("livenessProbe"))
            assert worker.health() == "healthy"
            with running_container(
                image,
                "api",
                env=environment,
                volumes=mounts,
                read_only=read_only,
                health_cmd='["imgworker", "health", "--api"]',
            ) as api_container:
                wait_for(lambda: answers(f"{api}/versions"), "/versions", api_container)
                assert api_container.health() == "healthy"
                for container in (worker, api_container):
                    assert_confined(container, uid)

                # web-download from a local web server: qcow2, converted, into RBD and a file.
                downloaded = create_image(api, "qcow2")
                start_import(
                    api,
                    downloaded,
                    {"name": "web-download", "uri": f"{source}/disk.qcow2"},
                    ["central", "archive"],
                )
                done = settled(api, downloaded, worker)
                assert (done["status"], done["stores"], done["disk_format"]) == (
                    ImageStatus.ACTIVE,
                    "central,archive",
                    "raw",
                ), done
                assert downloaded in cluster.images()
                stored = (archive / downloaded).stat()
                assert (stored.st_size, stored.st_uid) == (16 * MiB, uid)

                # glance-direct: the API container stages into the volume the worker reads.
                staged = create_image(api, "qcow2")
                call("PUT", f"{api}/v2/images/{staged}/stage", data=qcow2.read_bytes())
                start_import(api, staged, {"name": "glance-direct"}, ["archive"])
                assert settled(api, staged, worker)["status"] == ImageStatus.ACTIVE
                assert not any(staging.iterdir())

                # Stopping as Kubernetes does with an import running: preStop, then SIGTERM;
                # the drain grace, then the task goes back to the queue and the worker exits.
                slow = create_image(api, "raw")
                uri = f"{source}/slow/slow.raw"
                start_import(api, slow, {"name": "web-download", "uri": uri}, ["archive"])
                wait_for(
                    lambda: last_task(api, slow)["status"] == TaskStatus.PROCESSING,
                    "the slow import starting",
                    worker,
                )
                assert "drain started" in worker.exec(*POD.pre_stop)
                assert not answers(ready)
                seconds, code = worker.stop(POD.grace_seconds)
                logs = worker.logs()
                print(f"worker container: drained and stopped in {seconds:.1f} s")
                assert code == 0, f"exit {code} (137: killed after the grace):\n{logs}"
                assert "cancelling 1 running task(s)" in logs
                assert last_task(api, slow)["status"] == TaskStatus.PENDING

                _seconds, code = api_container.stop(POD.grace_seconds)
                assert code == 0, api_container.logs()
                for container in (worker, api_container):
                    assert container.writes_outside_volumes() == []
                    assert "Read-only file system" not in container.logs()
