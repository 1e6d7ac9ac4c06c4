"""The guide's 1.1.7 in a real cloud: a real Keystone (projects, users and roles created
through its API), ``imgworker api`` behind it, and the real ``glance`` and ``openstack``
clients. The policy file is edited while the API runs, as an operator edits it: the guide's
lock-down and open-up files, a custom import rule, a broken file. Every ``glance md-*``
command runs; the metadef limit stops a project; Glance's shipped definitions load and list.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import fresh_postgres
from tests.support.api import ApiProcess, running_api
from tests.support.clients import Clients, properties, refused, table
from tests.support.images import MiB, make_sparse_raw
from tests.support.keystone import Cloud, Person, _person, send_json
from tests.support.services import require_tcp
from tests.support.web_source import web_source
from tests.support.workers import IMGWORKER, Topology, delete_topology, write_config

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "tests" / "fixtures" / "metadefs"
LIMIT = 8
#: The metadef rules of the guide's procedures (1.1.7.1 and 1.1.7.2), by name.
READS = (
    "get_metadef_namespace", "get_metadef_namespaces", "get_metadef_object",
    "get_metadef_objects", "list_metadef_resource_types", "get_metadef_resource_type",
    "get_metadef_property", "get_metadef_properties", "get_metadef_tag", "get_metadef_tags",
)  # fmt: skip
WRITES = (
    "modify_metadef_namespace", "add_metadef_namespace", "delete_metadef_namespace",
    "modify_metadef_object", "add_metadef_object", "delete_metadef_object",
    "add_metadef_resource_type_association", "remove_metadef_resource_type_association",
    "modify_metadef_property", "add_metadef_property", "remove_metadef_property",
    "modify_metadef_tag", "add_metadef_tag", "add_metadef_tags", "delete_metadef_tag",
    "delete_metadef_tags",
)  # fmt: skip


def guide_file(lock_down: bool) -> str:
    """The guide's GlanceApiPolicies as the policy.yaml they become, rule text unchanged."""
    lines = ["metadef_default: ''"]
    if lock_down:
        lines.append("metadef_admin: 'role:admin'")
    lines += [f"{rule}: 'rule:metadef_default'" for rule in READS]
    write = "rule:metadef_admin" if lock_down else "rule:metadef_default"
    lines += [f"{rule}: '{write}'" for rule in WRITES]
    return "\n".join(lines) + "\n"


@dataclass
class Stack:
    """What the tests of this module share."""

    root: Path
    api: ApiProcess
    config: Path
    policy: Path
    source: str
    cloud: Cloud
    uploader: Person  # member and image_uploader of project A

    def clients(self, person: Person) -> Clients:
        """``glance`` and ``openstack`` as ``person`` runs them after ``source overcloudrc``."""
        return Clients(self.root / f"home-{person.name}", [], [], person.openrc())

    def glance(self, person: Person) -> Clients:
        """``glance`` with a token of ``person`` and the API's URL: the same calls, without
        a password login in every command (seconds each, here)."""
        token = ["--os-auth-token", person.token(), "--os-image-url", self.api.url]
        return Clients(self.root / f"home-{person.name}", token, [])

    def apply(self, text: str, outcome: str = "policy rules reloaded") -> None:
        """Write the policy file, as an operator does, and wait until the API says ``outcome``."""
        before = self.api.output().count(outcome)
        self.policy.write_text(text)
        deadline = time.monotonic() + 20
        while self.api.output().count(outcome) == before:
            assert time.monotonic() < deadline, f"the API never said {outcome!r}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, keystone_cloud: Cloud) -> Iterator[Stack]:
    require_tcp("RabbitMQ", "127.0.0.1", 5672)
    root = tmp_path_factory.mktemp("policy-stack")
    keystone = keystone_cloud.keystone
    if not keystone.admin("GET", "/roles?name=image_uploader").body["roles"]:
        keystone.admin("POST", "/roles", {"role": {"name": "image_uploader"}})
    uploader = _person(
        keystone, "ursula", "project-a", keystone_cloud.alice.project_id,
        ["member", "reader", "image_uploader"],
    )  # fmt: skip
    www = root / "www"
    www.mkdir()
    make_sparse_raw(www / "disk.raw", MiB, [(0, MiB // 2)])
    policy = root / "policy.yaml"
    policy.write_text("")
    topology = Topology()
    try:
        with fresh_postgres() as database, web_source(www) as source:
            config = write_config(root, database, topology, stores=("central",))
            with config.open("a") as extra:
                extra.write(
                    f'\n[api]\npolicy_file = "{policy}"\npolicy_reload_seconds = 0.2\n'
                    f"\n[metadefs]\nproject_limit = {LIMIT}\n"
                )
            environment = keystone_cloud.api_environment()
            with running_api(config, root, **environment) as api:
                keystone.register_image_api(api.url)
                yield Stack(root, api, config, policy, source, keystone_cloud, uploader)
    finally:
        asyncio.run(delete_topology(topology))


def test_the_guides_lock_down_and_open_up_files_decide_who_writes_metadefs(
    stack: Stack,
) -> None:
    alice = stack.clients(stack.cloud.alice)  # through the catalog, as after overcloudrc
    create = ("md-namespace-create", "--visibility", "public")
    refused(alice.glance(*create, "Alice::First"), 403, "add_metadef_namespace")
    stack.glance(stack.cloud.admin).glance(*create, "Admin::Public").ok()  # locked by default

    stack.apply(guide_file(lock_down=False))
    made = alice.glance(*create, "Alice::Open").ok()
    assert properties(made.stdout)["owner"] == stack.cloud.alice.project_id
    alice.glance("md-tag-create", "Alice::Open", "--name", "t1").ok()

    stack.apply(guide_file(lock_down=True))
    refused(alice.glance(*create, "Alice::Again"), 403, "add_metadef_namespace")
    refused(alice.glance("md-tag-create", "Alice::Open", "--name", "t2"), 403)
    listed = alice.glance("md-namespace-list").ok().stdout
    assert "Admin::Public" in listed and "Alice::Open" in listed  # reads stay open
    bob = stack.clients(stack.cloud.bob).openstack("image", "metadef", "namespace", "list")
    assert "Admin::Public" in bob.ok().stdout


def test_a_custom_import_rule_applies_on_reload_and_a_broken_file_keeps_it(
    stack: Stack,
) -> None:
    alice, ursula = stack.cloud.alice, stack.uploader
    uri = f"{stack.source}/disk.raw"
    as_alice, as_ursula = stack.glance(alice), stack.glance(ursula)
    images = []
    for person in (as_alice, as_ursula, as_alice):
        created = person.glance(
            "image-create", "--disk-format", "raw", "--container-format", "bare",
            "--name", "imported",
        ).ok()  # fmt: skip
        images.append(properties(created.stdout)["id"])
    importing = ("image-import", "--import-method", "web-download", "--uri", uri)
    as_alice.glance(*importing, images[0]).ok()  # members import by default

    only_uploaders = (
        '"modify_image": "rule:context_is_admin or '
        '(role:image_uploader and project_id:%(project_id)s)"\n'
    )
    stack.apply(only_uploaders)
    refused(as_alice.glance(*importing, images[2]), 403, "modify_image")
    as_ursula.glance(*importing, images[1]).ok()

    stack.apply('"modify_image": "role:admin"\n"add_image": "role:member or"\n', "not applied")
    log = stack.api.output()
    assert f"{stack.policy}:2: rule" in log and "cannot understand" in log
    assert "previous rules stay in force" in log
    refused(as_alice.glance(*importing, images[2]), 403, "modify_image")
    as_ursula.glance("image-update", "--name", "still-mine", images[1]).ok()
    stack.apply("")


def test_every_glance_md_command(stack: Stack) -> None:
    admin = stack.glance(stack.cloud.admin)
    root = stack.root
    ns = "OS::Acceptance"
    made = admin.glance("md-namespace-create", ns, "--display-name", "Acceptance",
                        "--description", "every md command")  # fmt: skip
    assert properties(made.ok().stdout)["display_name"] == "Acceptance"
    (root / "imported.json").write_text(json.dumps({
        "namespace": "OS::Imported", "visibility": "public",
        "properties": {"p": {"title": "P", "type": "string"}},
        "tags": [{"name": "x"}],
    }))  # fmt: skip
    admin.glance("md-namespace-import", "--file", str(root / "imported.json")).ok()
    admin.glance("md-namespace-update", ns, "--visibility", "public").ok()
    shown = properties(admin.glance("md-namespace-show", ns).ok().stdout)
    assert shown["visibility"] == "public"
    assert "OS::Imported" in admin.glance("md-namespace-list").ok().stdout

    schema = json.dumps({"type": "string", "title": "Disk bus", "enum": ["virtio", "scsi"]})
    admin.glance("md-property-create", ns, "--name", "disk_bus", "--title", "Disk bus",
                 "--type", "string", "--schema", schema).ok()  # fmt: skip
    admin.glance("md-property-update", ns, "disk_bus", "--title", "Bus").ok()
    assert (
        properties(admin.glance("md-property-show", ns, "disk_bus").ok().stdout)["title"] == "Bus"
    )
    assert "disk_bus" in admin.glance("md-property-list", ns).ok().stdout

    object_schema = json.dumps(
        {"description": "CPU", "required": ["cores"],
         "properties": {"cores": {"type": "integer", "title": "Cores"}}}
    )  # fmt: skip
    admin.glance("md-object-create", ns, "--name", "CPU", "--schema", object_schema).ok()
    admin.glance("md-object-update", ns, "CPU", "--name", "Processor").ok()
    assert "Processor" in admin.glance("md-object-list", ns).ok().stdout
    assert "cores" in admin.glance("md-object-show", ns, "Processor").ok().stdout
    cores = admin.glance("md-object-property-show", ns, "Processor", "cores").ok()
    assert properties(cores.stdout)["title"] == "Cores"

    # (md-tag-create-multiple --append fails in the client itself: it sends a boolean header.)
    admin.glance("md-tag-create-multiple", ns, "--names", "two,three").ok()
    admin.glance("md-tag-create", ns, "--name", "one").ok()
    admin.glance("md-tag-update", ns, "one", "--name", "uno").ok()
    assert properties(admin.glance("md-tag-show", ns, "uno").ok().stdout)["name"] == "uno"
    tags = [row["name"] for row in table(admin.glance("md-tag-list", ns).ok().stdout)]
    assert sorted(tags) == ["three", "two", "uno"]
    admin.glance("md-tag-delete", ns, "two").ok()

    admin.glance("md-resource-type-associate", ns, "--name", "OS::Nova::Flavor",
                 "--prefix", "hw:").ok()  # fmt: skip
    assert "OS::Nova::Flavor" in admin.glance("md-resource-type-list").ok().stdout
    assert "hw:" in admin.glance("md-namespace-resource-type-list", ns).ok().stdout
    prefixed = admin.glance("md-namespace-show", ns, "--resource-type", "OS::Nova::Flavor")
    assert "hw:disk_bus" in prefixed.ok().stdout
    admin.glance("md-resource-type-deassociate", ns, "OS::Nova::Flavor").ok()

    admin.glance("md-property-delete", ns, "disk_bus").ok()
    admin.glance("md-object-delete", ns, "Processor").ok()
    admin.glance("md-namespace-tags-delete", ns).ok()
    admin.glance("md-namespace-objects-delete", "OS::Imported").ok()
    admin.glance("md-namespace-properties-delete", "OS::Imported").ok()
    emptied = admin.glance("md-namespace-show", ns).ok().stdout
    assert "uno" not in emptied and "disk_bus" not in emptied
    admin.glance("md-namespace-update", "OS::Imported", "--protected", "True").ok()
    refused(admin.glance("md-namespace-delete", "OS::Imported"), 403, "protected")
    admin.glance("md-namespace-update", "OS::Imported", "--protected", "False").ok()
    admin.glance("md-namespace-delete", "OS::Imported").ok()
    admin.glance("md-namespace-delete", ns).ok()
    refused(admin.glance("md-namespace-show", ns), 404)


def test_with_writes_open_the_metadef_limit_refuses_with_a_clear_answer(stack: Stack) -> None:
    bob = stack.glance(stack.cloud.bob)
    stack.apply(guide_file(lock_down=False))
    bob.glance("md-namespace-create", "Bob::Flood").ok()
    names = ",".join(f"t{i}" for i in range(LIMIT - 1))
    bob.glance("md-tag-create-multiple", "Bob::Flood", "--names", names).ok()
    over = bob.glance("md-tag-create", "Bob::Flood", "--name", "one-more")
    refused(over, 413, f"may own at most {LIMIT} metadef records", "[metadefs] project_limit")
    refused(bob.glance("md-namespace-create", "Bob::Second"), 413)
    bob.glance("md-namespace-delete", "Bob::Flood").ok()
    bob.glance("md-namespace-create", "Bob::Second").ok()
    stack.apply("")


def test_glances_shipped_definitions_load_and_list(stack: Stack) -> None:
    environment = {"IMGWORKER_CONFIG": str(stack.config), "PATH": "/usr/bin:/bin"}
    load = [IMGWORKER, "db", "load-metadefs", str(SHIPPED)]
    done = subprocess.run(load, env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 loaded, 0 skipped, 0 refused" in done.stdout
    again = subprocess.run(load, env=environment, capture_output=True, text=True, timeout=120)
    assert "0 loaded, 4 skipped" in again.stdout

    rita = stack.glance(stack.cloud.rita)  # a reader: sees the public ones
    listed = rita.glance("md-namespace-list").ok().stdout
    for name in ("OS::Compute::Watchdog", "OS::Compute::Libvirt", "OS::Compute::Quota"):
        assert name in listed
    assert "OS::Glance::CommonImageProperties" not in listed  # private, the admin's
    watchdog = rita.glance("md-namespace-show", "OS::Compute::Watchdog").ok().stdout
    assert "watchdog_action" in watchdog
    types = rita.glance("md-resource-type-list").ok().stdout
    assert "OS::Glance::Image" in types and "OS::Nova::Flavor" in types
    objects = stack.clients(stack.cloud.rita).openstack(
        "image", "metadef", "object", "list", "OS::Compute::Quota"
    )
    assert "CPU Limits" in objects.ok().stdout
    admin = stack.glance(stack.cloud.admin)
    assert "OS::Glance::CommonImageProperties" in admin.glance("md-namespace-list").ok().stdout
    refused(admin.glance("md-namespace-delete", "OS::Compute::Watchdog"), 403, "protected")
    status, _headers, _body = send_json(
        "GET", f"{stack.api.url}/v2/metadefs/namespaces", {"X-Auth-Token": "nonsense"}
    )
    assert status == 401
