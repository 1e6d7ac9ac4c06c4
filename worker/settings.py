"""The worker's configuration: one TOML file, every key overridable from the environment.

Declared once here, typed, and validated at start. ``IMGWORKER_<SECTION>__<KEY>`` overrides
``[section] key`` (``IMGWORKER_STORES__CENTRAL__PATH`` reaches ``[stores.central] path``);
values are read as TOML literals (``4``, ``true``, ``["a", "b"]``) and otherwise as strings.
With no file at all the defaults make ``imgworker import`` work: SQLite, ``./staging`` and one
file store ``default`` under ``./stores/default``.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from flows.config import FlowSettings
from flows.policy import SafetyPolicy
from flows.request import METHODS
from flows.signing.config import SignatureSettings
from flows.stores.file import FileStoreConfig
from flows.stores.rbd_config import RbdStoreConfig
from worker.address import parse_address

ENV_PREFIX = "IMGWORKER_"
CONFIG_ENV = "IMGWORKER_CONFIG"

StoreConfig = Annotated[FileStoreConfig | RbdStoreConfig, Field(discriminator="type")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    """``[database]``: where the image and task records live."""

    url: str = "sqlite+aiosqlite:///./imgworker.db"
    #: Create or upgrade the schema when the worker starts.
    auto_upgrade: bool = True


class BrokerSettings(_Section):
    """``[broker]``: the RabbitMQ topology tasks travel through."""

    url: str = "amqp://guest:guest@127.0.0.1:5672/"
    exchange: str = "imgworker"
    queue: str = "imgworker.tasks"
    routing_key: str = "import"
    dead_letter_exchange: str = "imgworker.dlx"
    dead_letter_queue: str = "imgworker.dead"
    #: Deliveries of one message before the broker dead-letters it (``x-delivery-limit``).
    delivery_limit: int = Field(default=5, ge=1)


class WorkerSettings(_Section):
    """``[worker]``: one daemon process."""

    #: Imports run at once (also the consumer's prefetch).
    concurrency: int = Field(default=2, ge=1, le=64)
    #: Seconds a task may go without a heartbeat before its lock can be taken over.
    lease_seconds: float = Field(default=300.0, gt=0)
    #: Seconds between heartbeats (well under the lease).
    heartbeat_seconds: float = Field(default=30.0, gt=0)
    #: Seconds running imports get to finish on SIGTERM before they are reverted and requeued.
    drain_grace_seconds: float = Field(default=60.0, ge=0)
    #: ``host:port`` of /metrics, /livez and /readyz.
    http: str = "127.0.0.1:9480"
    #: This worker's id in task claims (default: host name and process id).
    id: str = ""

    @field_validator("http")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_address(value)
        return value

    @model_validator(mode="after")
    def _heartbeat_under_lease(self) -> WorkerSettings:
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds}) must be at most half of "
                f"lease_seconds ({self.lease_seconds}), or a live task could lose its lock"
            )
        return self

    def worker_id(self) -> str:
        """The configured id, or ``<hostname>:<pid>``."""
        return self.id or f"{socket.gethostname()}:{os.getpid()}"


class StagingSettings(_Section):
    """``[staging]``: where the bits wait between download and store."""

    dir: Path = Path("./staging")


class ImportSettings(_Section):
    """``[import]``: which methods are offered and what is converted to what."""

    methods: tuple[str, ...] = METHODS
    #: Target format of ``qemu-img convert``; ``""`` turns conversion off.
    convert_to: str = "raw"
    #: Bytes per read, hash update and write.
    chunk_size: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    #: Store writes run at once from one read of the data; 1 writes the stores one after
    #: the other, in the order given (the guide's order).
    max_parallel_stores: int = Field(default=1, ge=1, le=16)

    @model_validator(mode="after")
    def _known_methods(self) -> ImportSettings:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown import methods {unknown}; known: {list(METHODS)}")
        return self


def _default_backends() -> dict[str, FileStoreConfig | RbdStoreConfig]:
    return {"default": FileStoreConfig(type="file", path="./stores/default")}


class InjectMetadataSettings(_Section):
    """``[inject_metadata]``: Glance's ``inject_image_metadata`` plugin."""

    #: Properties set on every imported image.
    properties: dict[str, str] = Field(default_factory=dict)
    #: Requesters with one of these roles are exempt.
    ignore_user_roles: tuple[str, ...] = ("admin",)


class StoresSettings(BaseModel):
    """``[stores]``: ``default = NAME`` plus one ``[stores.NAME]`` table per store."""

    model_config = ConfigDict(frozen=True)

    default: str = "default"
    backends: dict[str, StoreConfig] = Field(default_factory=_default_backends)

    @model_validator(mode="before")
    @classmethod
    def _split_tables(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "backends" not in data:
            tables = {k: v for k, v in data.items() if k != "default"}
            rebuilt: dict[str, Any] = {"backends": tables} if tables else {}
            if "default" in data:
                rebuilt["default"] = data["default"]
            return rebuilt
        return data

    @model_validator(mode="after")
    def _default_exists(self) -> StoresSettings:
        if self.default not in self.backends:
            raise ValueError(
                f"default store {self.default!r} is not configured; "
                f"configured stores: {sorted(self.backends)}"
            )
        return self


class Settings(BaseModel):
    """The whole configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    worker: WorkerSettings = WorkerSettings()
    staging: StagingSettings = StagingSettings()
    import_: ImportSettings = Field(default=ImportSettings(), alias="import")
    stores: StoresSettings = StoresSettings()
    safety: SafetyPolicy = SafetyPolicy()
    signature: SignatureSettings = SignatureSettings()
    inject_metadata: InjectMetadataSettings = InjectMetadataSettings()

    def flow_settings(self) -> FlowSettings:
        """The subset a flow runs with."""
        return FlowSettings(
            staging_dir=self.staging.dir,
            methods=self.import_.methods,
            convert_to=self.import_.convert_to,
            chunk_size=self.import_.chunk_size,
            max_parallel_stores=self.import_.max_parallel_stores,
            lease_seconds=self.worker.lease_seconds,
            heartbeat_seconds=self.worker.heartbeat_seconds,
            safety=self.safety,
            signature=self.signature,
            inject_properties=dict(self.inject_metadata.properties),
            inject_ignore_roles=self.inject_metadata.ignore_user_roles,
        )


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem and where it is."""


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the TOML file (``path``, else ``$IMGWORKER_CONFIG``, else none) plus overrides."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(CONFIG_ENV) or None
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = os.fspath(path)
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"{source}: no such configuration file") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    _apply_environment(data, environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV or "__" not in name:
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: [{key}] is not a table in the configuration")
            node = child
        node[keys[-1]] = _parse_value(raw)


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: {error.error_count()} problem(s) in the configuration:"]
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"] if part != "backends")
        lines.append(f"  - {where or '(top level)'}: {problem['msg']}")
    lines.append(
        f"  (each key may come from the file or from {ENV_PREFIX}<SECTION>__<KEY> variables)"
    )
    return "\n".join(lines)
