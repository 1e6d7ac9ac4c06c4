"""Reading policy files strictly: every problem is refused with its file and line.

oslo.policy itself is lenient: a check string it cannot parse becomes "deny" with a log
line, a rule naming an undefined rule denies silently, and a file that fails to parse on
reload leaves the rules half-replaced. The engine therefore reads every file here first
(with the very parser oslo.policy uses) and only lets oslo.policy load files that passed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from oslo_policy.policy import AndCheck, NotCheck, OrCheck, RuleCheck, Rules

if TYPE_CHECKING:
    from oslo_policy._checks import BaseCheck

#: The logger oslo.policy's parser reports a check string it cannot understand to.
_PARSER_LOGGER = "oslo_policy"


class PolicyFileError(Exception):
    """A policy file that cannot be applied: where, and what is wrong."""

    def __init__(self, path: Path | None, line: int | None, problem: str) -> None:
        where = "" if path is None else f"{path}:{line}: " if line else f"{path}: "
        super().__init__(f"{where}{problem}")
        self.path = path
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class FileRule:
    """One rule an operator wrote: its check string, parsed, and where it was written."""

    check_str: str
    check: BaseCheck
    path: Path
    line: int


#: What identifies a file's version without reading it: path, mtime (ns), size, inode.
Signature = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class PolicySources:
    """``[api] policy_file`` and ``policy_dirs``, as absolute paths."""

    file: Path | None
    dirs: tuple[Path, ...] = ()

    @classmethod
    def of(cls, policy_file: str, policy_dirs: tuple[str, ...]) -> PolicySources:
        """The configured sources (relative paths are taken from the current directory)."""
        return cls(
            Path(policy_file).absolute() if policy_file else None,
            tuple(Path(d).absolute() for d in policy_dirs),
        )

    def files(self) -> list[Path]:
        """The files in the order they apply: the policy file, then each directory's files
        by name (hidden files skipped, as oslo.policy skips them)."""
        found = []
        if self.file is not None:
            if not self.file.is_file():
                raise PolicyFileError(
                    self.file,
                    None,
                    "the policy file does not exist (create it, or unset "
                    "[api] policy_file to use the defaults)",
                )
            found.append(self.file)
        for directory in self.dirs:
            if not directory.is_dir():
                raise PolicyFileError(directory, None, "the policy directory does not exist")
            found.extend(
                sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
            )
        return found

    def signature(self) -> Signature:
        """The version of every file (a missing one is absent): changes when any changes."""
        versions = []
        for path in self._candidates():
            try:
                status = path.stat()
            except OSError:
                continue
            versions.append((str(path), status.st_mtime_ns, status.st_size, status.st_ino))
        return tuple(versions)

    def _candidates(self) -> Iterator[Path]:
        if self.file is not None:
            yield self.file
        for directory in self.dirs:
            try:
                yield from sorted(directory.iterdir())
            except OSError:
                continue


def read_rules(paths: list[Path]) -> dict[str, FileRule]:
    """The rules of ``paths``, later files overriding earlier ones; PolicyFileError else."""
    rules: dict[str, FileRule] = {}
    for path in paths:
        rules.update(read_policy_file(path))
    return rules


def read_policy_file(path: Path) -> dict[str, FileRule]:
    """One file's rules, each check string parsed; PolicyFileError at the first problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyFileError(path, None, f"cannot be read: {error}") from error
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise PolicyFileError(path, line, f"not valid YAML (or JSON): {problem}") from error
    except yaml.YAMLError as error:
        raise PolicyFileError(path, None, f"not valid YAML (or JSON): {error}") from error
    if document is None:
        return {}
    if not isinstance(document, yaml.MappingNode):
        raise PolicyFileError(
            path, document.start_mark.line + 1, 'write one "rule name": "check string" per line'
        )
    rules: dict[str, FileRule] = {}
    for key, value in document.value:
        line = key.start_mark.line + 1
        name = _scalar_text(key)
        if name is None:
            raise PolicyFileError(path, line, "a rule name must be a string")
        if name in rules:
            raise PolicyFileError(
                path, line, f'rule "{name}" is already defined on line {rules[name].line}'
            )
        check_str = _scalar_text(value)
        if check_str is None:
            raise PolicyFileError(
                path, line, f'rule "{name}": the check must be a string ("" allows everyone)'
            )
        rules[name] = FileRule(check_str, parse_check(path, line, name, check_str), path, line)
    return rules


def _scalar_text(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        return str(node.value)
    return None


def parse_check(path: Path, line: int, name: str, check_str: str) -> BaseCheck:
    """``check_str`` parsed by oslo.policy, refused when its parser could not understand it
    (it says so only in its log, and would deny everything)."""
    collector = _Collector()
    logger = logging.getLogger(_PARSER_LOGGER)
    propagates = logger.propagate
    logger.addHandler(collector)
    logger.propagate = False
    try:
        check = Rules.from_dict({name: check_str})[name]
    finally:
        logger.removeHandler(collector)
        logger.propagate = propagates
    if collector.problems:
        raise PolicyFileError(
            path, line, f'rule "{name}": cannot understand "{check_str}" ({collector.problems[0]})'
        )
    return check


class _Collector(logging.Handler):
    """Keeps what the parser reported, instead of letting it reach the logs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.problems: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.problems.append(record.getMessage())


def check_references(file_rules: Mapping[str, FileRule], defaults: Mapping[str, BaseCheck]) -> None:
    """Refuse a ``rule:NAME`` that names no rule, and rules that refer to themselves."""
    checks = {**defaults, **{name: rule.check for name, rule in file_rules.items()}}
    for name, rule in file_rules.items():
        for referred in _references(rule.check):
            if referred not in checks:
                raise PolicyFileError(
                    rule.path,
                    rule.line,
                    f'rule "{name}" refers to "rule:{referred}", which no file or default defines',
                )
        if _cycles(name, checks, ()):
            raise PolicyFileError(
                rule.path, rule.line, f'rule "{name}" refers back to itself through "rule:" checks'
            )


def _references(check: BaseCheck) -> Iterator[str]:
    if isinstance(check, RuleCheck):
        yield check.match
    elif isinstance(check, AndCheck | OrCheck):
        for inner in check.rules:
            yield from _references(inner)
    elif isinstance(check, NotCheck):
        yield from _references(check.rule)


def _cycles(name: str, checks: Mapping[str, BaseCheck], seen: tuple[str, ...]) -> bool:
    if name in seen:
        return True
    check = checks.get(name)
    if check is None:
        return False
    return any(_cycles(referred, checks, (*seen, name)) for referred in _references(check))
