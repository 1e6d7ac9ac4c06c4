"""The import request: Glance's ``POST /v2/images/{id}/import`` body, parsed and checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flows.errors import InvalidRequest, UnknownMethod

WEB_DOWNLOAD = "web-download"
GLANCE_DIRECT = "glance-direct"
COPY_IMAGE = "copy-image"
METHODS = (WEB_DOWNLOAD, GLANCE_DIRECT, COPY_IMAGE)

#: Checksum algorithms accepted for a web-download's expected checksum.
CHECKSUM_ALGOS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


@dataclass(frozen=True, slots=True)
class ExpectedChecksum:
    """The checksum the downloaded bits must have (an addition Glance lacks)."""

    algo: str
    value: str


@dataclass(frozen=True, slots=True)
class ImportRequest:
    """What to import and where to."""

    method: str
    uri: str | None = None
    checksum: ExpectedChecksum | None = None
    stores: tuple[str, ...] = field(default_factory=tuple)
    all_stores: bool = False
    all_stores_must_succeed: bool = True

    @property
    def allow_failure(self) -> bool:
        """The client's ``--allow-failure``: the inverse of ``all_stores_must_succeed``."""
        return not self.all_stores_must_succeed

    def to_body(self) -> dict[str, Any]:
        """The request as Glance's JSON body (what the task message carries)."""
        method: dict[str, Any] = {"name": self.method}
        if self.uri is not None:
            method["uri"] = self.uri
        if self.checksum is not None:
            method["checksum"] = {"algo": self.checksum.algo, "value": self.checksum.value}
        body: dict[str, Any] = {
            "method": method,
            "all_stores": self.all_stores,
            "all_stores_must_succeed": self.all_stores_must_succeed,
        }
        if self.stores:
            body["stores"] = list(self.stores)
        return body


def parse_import_request(body: Mapping[str, Any]) -> ImportRequest:
    """Parse and check an ``import_req`` body; raise :class:`InvalidRequest` naming the field."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("import_req must be a JSON object")
    method = body.get("method")
    if not isinstance(method, Mapping):
        raise UnknownMethod("import_req.method must be an object with a 'name'")
    name = method.get("name")
    if name not in METHODS:
        raise UnknownMethod(
            f"import_req.method.name {name!r} is not an import method; use one of "
            + ", ".join(METHODS)
        )
    uri = method.get("uri")
    if name == WEB_DOWNLOAD:
        if not isinstance(uri, str) or not uri:
            raise InvalidRequest("web-download needs import_req.method.uri (the image's URL)")
    elif uri is not None:
        raise InvalidRequest(f"{name} takes no import_req.method.uri")
    checksum = _parse_checksum(method.get("checksum"), name)
    stores = body.get("stores")
    if stores is None:
        stores = []
    if not isinstance(stores, list) or not all(isinstance(s, str) and s for s in stores):
        raise InvalidRequest("import_req.stores must be a list of store names")
    if len(set(stores)) != len(stores):
        raise InvalidRequest("import_req.stores names a store twice")
    all_stores = _boolean(body, "all_stores", False)
    if all_stores and stores:
        raise InvalidRequest("import_req: give either 'stores' or 'all_stores', not both")
    return ImportRequest(
        method=name,
        uri=uri,
        checksum=checksum,
        stores=tuple(stores),
        all_stores=all_stores,
        all_stores_must_succeed=_boolean(body, "all_stores_must_succeed", True),
    )


def _boolean(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise InvalidRequest(f"import_req.{key} must be true or false, not {value!r}")
    return value


def _parse_checksum(raw: object, method: str) -> ExpectedChecksum | None:
    if raw is None:
        return None
    if method != WEB_DOWNLOAD:
        raise InvalidRequest("only web-download takes an expected checksum")
    if not isinstance(raw, Mapping):
        raise InvalidRequest('import_req.method.checksum must be {"algo": ..., "value": ...}')
    algo, value = raw.get("algo"), raw.get("value")
    if algo not in CHECKSUM_ALGOS:
        raise InvalidRequest(
            f"checksum algo {algo!r} is not supported; use one of " + ", ".join(CHECKSUM_ALGOS)
        )
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("import_req.method.checksum.value must be a hex digest")
    return ExpectedChecksum(algo=algo, value=value.strip().lower())
