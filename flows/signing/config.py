"""How signatures are verified: where certificates come from and which CAs are trusted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True, slots=True)
class SignatureSettings:
    """``[signature]``: the key manager holding certificates and the trust requirements."""

    #: ``directory`` (PEM files named ``<uuid>.pem``) or ``barbican``.
    key_manager: Literal["directory", "barbican"] = "directory"
    #: The directory of certificates for the ``directory`` key manager.
    certificate_dir: Path = Path("/etc/imgworker/certificates")
    #: Directory of CA certificates (``*.pem``, ``*.crt``); when set, a signing certificate must
    #: be issued by one of them (an intermediate CA counts when it is in the directory too).
    trust_store_dir: Path | None = None
    #: Barbican's endpoint (``https://barbican.example:9311``) and how to authenticate.
    barbican_url: str = ""
    barbican_token: str = field(default="", repr=False)
    #: Keystone v3 application credential, used when no token is configured.
    keystone_url: str = ""
    application_credential_id: str = ""
    application_credential_secret: str = field(default="", repr=False)
    #: Timeout of one request to Barbican or Keystone, in seconds.
    request_timeout_seconds: float = 30.0
    #: Images without ``img_signature`` are refused when true.
    require_signature: bool = False
