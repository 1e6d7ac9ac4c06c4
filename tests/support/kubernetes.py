"""deploy/kubernetes/'s Deployment and ConfigMap, read the way the container test applies them:
who the worker runs as, what it may write, its volumes, environment, probes and stop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


@dataclass(frozen=True)
class Mount:
    """One volume mount of the worker container and the kind of volume behind it."""

    name: str
    path: str
    read_only: bool
    #: ``emptyDir``, ``configMap``, ``secret``, ...
    kind: str
    #: The volume's own settings (a ConfigMap's name, a Secret's name, a size limit).
    source: dict[str, Any]


@dataclass(frozen=True)
class WorkerPod:
    """The parts of the Deployment's pod the image must honour."""

    pod: dict[str, Any]
    container: dict[str, Any]
    config_maps: dict[str, dict[str, str]]

    @classmethod
    def load(cls) -> WorkerPod:
        """Read deploy/kubernetes/deployment.yaml and configmap.yaml."""
        documents = [
            document
            for path in (MANIFESTS / "deployment.yaml", MANIFESTS / "configmap.yaml")
            for document in yaml.safe_load_all(path.read_text())
            if document
        ]
        pod = next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]
        maps = {d["metadata"]["name"]: d["data"] for d in documents if d["kind"] == "ConfigMap"}
        return cls(pod, pod["containers"][0], maps)

    @property
    def user(self) -> tuple[int, int]:
        """``runAsUser`` and ``runAsGroup``."""
        context = self.pod["securityContext"]
        return int(context["runAsUser"]), int(context["runAsGroup"])

    @property
    def security(self) -> dict[str, Any]:
        """The pod's and the container's security contexts, merged."""
        return {**self.pod["securityContext"], **self.container["securityContext"]}

    @property
    def mounts(self) -> list[Mount]:
        """The container's volume mounts with their volumes."""
        volumes = {volume["name"]: volume for volume in self.pod["volumes"]}
        found = []
        for mount in self.container["volumeMounts"]:
            volume = volumes[mount["name"]]
            kind = next(key for key in volume if key != "name")
            found.append(
                Mount(
                    mount["name"],
                    mount["mountPath"],
                    bool(mount.get("readOnly")),
                    kind,
                    volume[kind],
                )
            )
        return found

    @property
    def env(self) -> list[dict[str, Any]]:
        """The container's ``env`` entries."""
        return list(self.container["env"])

    def probe_path(self, probe: str) -> str:
        """The HTTP path of ``readinessProbe`` or ``livenessProbe``."""
        return str(self.container[probe]["httpGet"]["path"])

    @property
    def http_port(self) -> int:
        """The containerPort the probes use."""
        port = self.container["readinessProbe"]["httpGet"]["port"]
        named = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        return int(named.get(port, port))

    @property
    def pre_stop(self) -> list[str]:
        """The ``preStop`` command."""
        return list(self.container["lifecycle"]["preStop"]["exec"]["command"])

    @property
    def grace_seconds(self) -> int:
        """``terminationGracePeriodSeconds``."""
        return int(self.pod["terminationGracePeriodSeconds"])
