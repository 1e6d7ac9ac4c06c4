"""A real Keystone for the integration tests, its v3 API, and the people of a small cloud.

deploy/dev/keystone-up.sh installs Keystone from PyPI once (a cached virtualenv) and serves
it on loopback; the session-scoped fixture :func:`keystone` starts one per test session in a
few seconds and stops it by pid at the end. :func:`keystone_cloud` creates two projects and their
users through the v3 API, as an operator does with ``openstack project create`` and
``openstack role add``. Tests register their own ``imgworker api`` in the catalog as the
``image`` service (its port is known only once it runs): :meth:`Keystone.register_image_api`.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from tests.support.workers import free_port

ROOT = Path(__file__).resolve().parents[2]
UP = ROOT / "deploy" / "dev" / "keystone-up.sh"
DOWN = ROOT / "deploy" / "dev" / "keystone-down.sh"
ADMIN_PASSWORD = "admin-secret"
DOMAIN = "Default"
REGION = "RegionOne"


def send_json(
    method: str, url: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Message, bytes]:
    """One HTTP request with a JSON body (or none): status, headers (looked up in any case)
    and body, of errors too."""
    data = json.dumps(body).encode() if body is not None else None
    request = Request(url, data=data, headers=headers, method=method)
    try:
        with urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except HTTPError as error:
        return error.code, error.headers, error.read()


@dataclass(frozen=True)
class Answer:
    """One v3 answer: status, JSON body (``{}`` when none) and ``X-Subject-Token``."""

    status: int
    body: dict[str, Any]
    subject_token: str


@dataclass
class Keystone:
    """One Keystone served from ``dir`` on ``127.0.0.1:port``."""

    dir: Path
    port: int
    _admin: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Its v3 URL (what ``--os-auth-url`` and ``[keystone] auth_url`` take)."""
        return f"http://127.0.0.1:{self.port}/v3"

    def start(self) -> None:
        """Install (once), set up (once per dir) and serve; wait until /v3 answers."""
        done = subprocess.run(
            [str(UP), str(self.dir), str(self.port)],
            capture_output=True,
            text=True,
            timeout=600,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "KEYSTONE_ADMIN_PASSWORD": ADMIN_PASSWORD},
        )
        if done.returncode != 0:
            pytest.fail(
                f"Keystone did not start ({UP} exited {done.returncode}):\n"
                f"{done.stdout}\n{done.stderr}",
                pytrace=False,
            )

    def stop(self) -> None:
        """Stop it by the pid in its pidfile."""
        subprocess.run([str(DOWN), str(self.dir)], check=True, timeout=60)

    # -- the v3 API -----------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        token: str | None = None,
        subject: str | None = None,
    ) -> Answer:
        """``method path`` on the v3 API (``token``: the caller's; ``subject``: the token
        a /auth/tokens call is about)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            headers["X-Auth-Token"] = token
        if subject is not None:
            headers["X-Subject-Token"] = subject
        status, answered, raw = send_json(method, f"{self.url}{path}", headers, body)
        parsed = json.loads(raw) if raw else {}
        subject_token = answered.get("X-Subject-Token", "")
        return Answer(status, parsed if isinstance(parsed, dict) else {}, subject_token)

    def login(self, user: str, password: str, project: str | None) -> Answer:
        """``POST /v3/auth/tokens`` with a password, scoped to ``project`` when given."""
        auth: dict[str, Any] = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"name": DOMAIN}, "password": password}
                },
            }
        }
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"name": DOMAIN}}}
        answer = self.call("POST", "/auth/tokens", {"auth": auth})
        assert answer.status == 201, f"login of {user} refused: {answer}"
        return answer

    def admin_token(self) -> str:
        """A token of the cloud admin (``admin`` in project ``admin``)."""
        if (
            self._admin is None
            or self.call("GET", "/auth/tokens", token=self._admin, subject=self._admin).status
            != 200
        ):
            self._admin = self.login("admin", ADMIN_PASSWORD, "admin").subject_token
        return self._admin

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Answer:
        """A v3 call as the cloud admin; fail unless it succeeded."""
        answer = self.call(method, path, body, token=self.admin_token())
        assert answer.status < 300, f"{method} {path}: HTTP {answer.status} {answer.body}"
        return answer

    def revoke(self, token: str) -> None:
        """``DELETE /v3/auth/tokens``: the token is revoked at once in Keystone."""
        answer = self.call("DELETE", "/auth/tokens", token=self.admin_token(), subject=token)
        assert answer.status == 204, f"revocation refused: {answer}"

    def create_project(self, name: str) -> str:
        """A project in the default domain; its id."""
        body = {"project": {"name": name, "domain_id": "default"}}
        return str(self.admin("POST", "/projects", body).body["project"]["id"])

    def create_user(self, name: str, password: str, project_id: str, roles: list[str]) -> str:
        """A user with ``roles`` on the project; its id."""
        body = {"user": {"name": name, "password": password, "domain_id": "default"}}
        user_id = str(self.admin("POST", "/users", body).body["user"]["id"])
        for role in roles:
            role_id = self._role_id(role)
            self.admin("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}")
        return user_id

    def _role_id(self, name: str) -> str:
        roles = self.admin("GET", f"/roles?name={name}").body["roles"]
        assert roles, f"Keystone has no role {name!r}"
        return str(roles[0]["id"])

    def register_image_api(self, url: str) -> None:
        """Make ``url`` the cloud's ``image`` service (public, internal and admin endpoints),
        replacing whatever endpoints it had (each test runs its own API)."""
        services = self.admin("GET", "/services?type=image").body["services"]
        if services:
            service_id = str(services[0]["id"])
        else:
            body = {"service": {"type": "image", "name": "glance", "enabled": True}}
            service_id = str(self.admin("POST", "/services", body).body["service"]["id"])
        endpoints = self.admin("GET", f"/endpoints?service_id={service_id}").body["endpoints"]
        for endpoint in endpoints:
            self.admin("DELETE", f"/endpoints/{endpoint['id']}")
        for interface in ("public", "internal", "admin"):
            body = {
                "endpoint": {
                    "service_id": service_id,
                    "interface": interface,
                    "url": url,
                    "region_id": REGION,
                }
            }
            self.admin("POST", "/endpoints", body)


@dataclass(frozen=True)
class Person:
    """A user of the test cloud, scoped to one project."""

    keystone: Keystone
    name: str
    password: str
    project: str
    project_id: str
    user_id: str

    def token(self) -> str:
        """A new project-scoped token."""
        return self.keystone.login(self.name, self.password, self.project).subject_token

    def openrc(self) -> dict[str, str]:
        """What ``source ~/overcloudrc`` exports for this user."""
        return {
            "OS_AUTH_URL": self.keystone.url,
            "OS_USERNAME": self.name,
            "OS_PASSWORD": self.password,
            "OS_PROJECT_NAME": self.project,
            "OS_USER_DOMAIN_NAME": DOMAIN,
            "OS_PROJECT_DOMAIN_NAME": DOMAIN,
            "OS_IDENTITY_API_VERSION": "3",
            "OS_REGION_NAME": REGION,
            "OS_INTERFACE": "public",
        }

    def auth_args(self) -> list[str]:
        """The same as command-line options (``glance --os-auth-url ...``)."""
        return [
            "--os-auth-url", self.keystone.url,
            "--os-username", self.name,
            "--os-password", self.password,
            "--os-project-name", self.project,
            "--os-user-domain-name", DOMAIN,
            "--os-project-domain-name", DOMAIN,
        ]  # fmt: skip

    def application_credential(self, seconds: int | None = None) -> tuple[str, str]:
        """A new application credential of this user in its project (expiring in ``seconds``
        when given): its id and secret."""
        credential: dict[str, Any] = {"name": f"cred-{uuid.uuid4().hex[:8]}"}
        if seconds is not None:
            expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
            credential["expires_at"] = expires.strftime("%Y-%m-%dT%H:%M:%S")
        created = self.keystone.call(
            "POST",
            f"/users/{self.user_id}/application_credentials",
            {"application_credential": credential},
            token=self.token(),
        )
        assert created.status == 201, f"application credential refused: {created}"
        made = created.body["application_credential"]
        return str(made["id"]), str(made["secret"])

    def expiring_token(self, seconds: int) -> tuple[str, datetime.datetime]:
        """A token that expires in about ``seconds``, and its expiry: issued through an
        application credential expiring then (Keystone caps the token's life at it)."""
        credential_id, secret = self.application_credential(seconds)
        auth = {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": credential_id, "secret": secret},
            }
        }
        answer = self.keystone.call("POST", "/auth/tokens", {"auth": auth})
        assert answer.status == 201, f"login with the application credential refused: {answer}"
        expires_at = datetime.datetime.fromisoformat(answer.body["token"]["expires_at"])
        return answer.subject_token, expires_at


@dataclass(frozen=True)
class Cloud:
    """Two projects and their people, the cloud admin, and the image API's service user."""

    keystone: Keystone
    alice: Person  # member of project A
    rita: Person  # reader of project A
    bob: Person  # member of project B
    admin: Person  # the cloud admin (admin of project admin)
    #: The image API's own user (the service role on project ``service``).
    service: Person

    def api_environment(
        self, cache_seconds: float = 2, application_credential: tuple[str, str] | None = None
    ) -> dict[str, str]:
        """``IMGWORKER_*`` overrides that put an ``imgworker api`` behind this Keystone, logged
        in with the service user's password or ``application_credential`` (id, secret)."""
        environment = {
            "IMGWORKER_API__AUTH": "keystone",
            "IMGWORKER_KEYSTONE__AUTH_URL": self.keystone.url,
            "IMGWORKER_KEYSTONE__CACHE_SECONDS": str(cache_seconds),
        }
        if application_credential is not None:
            credential_id, secret = application_credential
            environment["IMGWORKER_KEYSTONE__APPLICATION_CREDENTIAL_ID"] = credential_id
            environment["IMGWORKER_KEYSTONE__APPLICATION_CREDENTIAL_SECRET"] = secret
        else:
            environment["IMGWORKER_KEYSTONE__USERNAME"] = self.service.name
            environment["IMGWORKER_KEYSTONE__PASSWORD"] = self.service.password
            environment["IMGWORKER_KEYSTONE__PROJECT_NAME"] = self.service.project
        return environment


def _person(
    keystone: Keystone, name: str, project: str, project_id: str, roles: list[str]
) -> Person:
    password = f"{name}-password"
    user_id = keystone.create_user(name, password, project_id, roles)
    return Person(keystone, name, password, project, project_id, user_id)


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """One real Keystone for the session; stopped by pid at the end."""
    server = Keystone(tmp_path_factory.mktemp("keystone"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def keystone_cloud(keystone: Keystone) -> Cloud:
    """Projects ``project-a`` and ``project-b``, their users, and the service user."""
    project_a = keystone.create_project("project-a")
    project_b = keystone.create_project("project-b")
    service = keystone.create_project("service")
    admin_login = keystone.login("admin", ADMIN_PASSWORD, "admin").body["token"]
    admin = Person(
        keystone,
        "admin",
        ADMIN_PASSWORD,
        "admin",
        str(admin_login["project"]["id"]),
        str(admin_login["user"]["id"]),
    )
    return Cloud(
        keystone=keystone,
        alice=_person(keystone, "alice", "project-a", project_a, ["member"]),
        rita=_person(keystone, "rita", "project-a", project_a, ["reader"]),
        bob=_person(keystone, "bob", "project-b", project_b, ["member"]),
        admin=admin,
        service=_person(keystone, "imgworker", "service", service, ["service"]),
    )
