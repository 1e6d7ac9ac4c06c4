"""Glance's policy rules with their current defaults, and the engine that applies a policy file.

Every rule name Glance registers is registered here, so an operator's Glance policy file
means the same thing to imgworker. :func:`list_rules` is the ``oslo.policy.policies`` entry
point (``oslopolicy-sample-generator --namespace imgworker``); :mod:`.engine` reads the files.
"""

from __future__ import annotations

from oslo_policy.policy import RuleDefault

from worker.api.policies import base, cache, images, metadefs


def list_rules() -> list[RuleDefault]:
    """Every rule, with its default."""
    return [*base.rules(), *images.rules(), *cache.rules(), *metadefs.rules()]
