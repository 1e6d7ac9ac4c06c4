"""The settings a flow runs with (the worker builds them from its configuration)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flows.policy import SafetyPolicy
from flows.request import METHODS
from flows.signing.config import SignatureSettings
from flows.sparse import DEFAULT_CHUNK_SIZE


@dataclass(frozen=True, slots=True)
class FlowSettings:
    """Everything about *how* to import that does not come from the request."""

    staging_dir: Path
    #: Import methods this deployment accepts.
    methods: tuple[str, ...] = METHODS
    #: Target format of ``qemu-img convert``; empty turns conversion off.
    convert_to: str = "raw"
    #: Size of the chunks read, hashed and written.
    chunk_size: int = DEFAULT_CHUNK_SIZE
    #: Store writes run at once, fed by one read of the data (1: one after the other).
    max_parallel_stores: int = 1
    #: How long a task may go without a heartbeat before its lock can be taken over.
    lease_seconds: float = 300.0
    #: How often the holder stamps its task's ``updated_at``.
    heartbeat_seconds: float = 30.0
    #: How often the "Copied N MiB" progress message is written.
    progress_seconds: float = 2.0
    #: Safety limits and checks.
    safety: SafetyPolicy = field(default_factory=SafetyPolicy)
    #: Signature verification.
    signature: SignatureSettings = field(default_factory=SignatureSettings)
    #: Properties added to every imported image (Glance's ``inject_image_metadata``).
    inject_properties: dict[str, str] = field(default_factory=dict)
    #: Users with one of these roles are exempt from the injection.
    inject_ignore_roles: tuple[str, ...] = ("admin",)
