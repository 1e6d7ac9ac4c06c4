"""Remembering oslo.policy's answers: the same question gets the same answer without asking.

oslo.policy inspects the signature of every node of a rule on every evaluation (about 40 µs a
node here), so an image rule costs most of a millisecond: a measurable share of a small
request. Most rules are pure functions of the caller and of a few target keys (owner,
visibility, membership), and an API answers the same few questions again and again, so the
answers are kept per (rule, caller, the values of the keys the rule reads). A rule with a
check whose answer may change by itself (``http:``, or a check type a plugin added) is never
remembered. The memory belongs to one set of rules: new rules start with none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

from oslo_policy.policy import AndCheck, NotCheck, OrCheck, RuleCheck

if TYPE_CHECKING:
    from oslo_policy._checks import BaseCheck

#: Check types whose answer depends on the caller and the target alone.
_PURE = frozenset({"TrueCheck", "FalseCheck", "RoleCheck", "GenericCheck", "RuleCheck"})
_TARGET_KEY = re.compile(r"%\((.+?)\)s")
#: Answers kept at most (then forgotten all at once: cheaper than tracking their age).
MAX_ANSWERS = 50_000


class Decisions:
    """Answers to ``(rule, caller, target)`` questions, asked of ``decide`` once each."""

    def __init__(self, rules: Mapping[str, BaseCheck]) -> None:
        self._reads = {name: _target_keys(name, rules) for name in rules}
        self._answers: dict[Hashable, bool] = {}

    def answer(
        self,
        rule: str,
        target: Mapping[str, Any],
        caller: Hashable,
        decide: Callable[[], bool],
    ) -> bool:
        """The remembered answer, or ``decide()``'s (remembered when the rule is pure)."""
        keys = self._reads.get(rule)
        if keys is None:
            return decide()
        question = (rule, caller, *(target.get(key) for key in keys))
        try:
            return self._answers[question]
        except KeyError:
            pass
        except TypeError:  # a target value that cannot be a key (a list): just ask
            return decide()
        answer = decide()
        if len(self._answers) >= MAX_ANSWERS:
            self._answers.clear()
        self._answers[question] = answer
        return answer


def _target_keys(name: str, rules: Mapping[str, BaseCheck]) -> tuple[str, ...] | None:
    """The target keys rule ``name`` reads, or None when its answer may change by itself."""
    keys: set[str] = set()
    if not _collect(rules[name], rules, keys, {name}):
        return None
    return tuple(sorted(keys))


def _collect(
    check: BaseCheck, rules: Mapping[str, BaseCheck], keys: set[str], seen: set[str]
) -> bool:
    kind = type(check).__name__
    if isinstance(check, AndCheck | OrCheck):
        return all(_collect(inner, rules, keys, seen) for inner in check.rules)
    if isinstance(check, NotCheck):
        return _collect(check.rule, rules, keys, seen)
    if kind not in _PURE:
        return False
    if isinstance(check, RuleCheck):
        if check.match in seen or check.match not in rules:
            return True
        return _collect(rules[check.match], rules, keys, seen | {check.match})
    keys.update(_TARGET_KEY.findall(str(check)))
    return True
