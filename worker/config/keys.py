"""Every key of a configuration checked against the declared settings, before validation.

A key that nothing declares is a typo until proven otherwise: it would otherwise be ignored
(a store's table, an environment variable) or reported in a library's words. Each unknown key
is reported one way, wherever it is — a section, a store's table of either type, an
``IMGWORKER_<SECTION>__<KEY>`` variable — naming the table, the key, where it was set and the
nearest declared key (:mod:`difflib`), and is then left out so that validation reports the
rest of what is wrong in the same run.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

#: Names of the values of ``[stores.NAME] type`` and the table each one declares.
StoreTypes = Mapping[str, type]


@dataclass(frozen=True, slots=True)
class UnknownKey:
    """One key no setting declares."""

    #: Where it is: ``("stores", "dcn1", "pth")``.
    path: tuple[str, ...]
    #: The keys its table declares.
    valid: tuple[str, ...]
    #: The environment variable that set it; None: the file.
    variable: str | None

    @property
    def table(self) -> str:
        """The table it is in (``stores.dcn1``; empty at the top level)."""
        return ".".join(self.path[:-1])

    @property
    def key(self) -> str:
        """The key itself."""
        return self.path[-1]

    def nearest(self) -> str | None:
        """The declared key it most likely meant, if one is close."""
        close = difflib.get_close_matches(self.key, self.valid, n=1, cutoff=0.6)
        return close[0] if close else None

    def describe(self) -> str:
        """``stores.dcn1.pth: unknown key in [stores.dcn1]; did you mean path?``"""
        nearest = self.nearest()
        if self.table:
            what = f"unknown key in [{self.table}]"
            meant = nearest
        else:
            what = "unknown section"
            meant = f"[{nearest}]" if nearest else None
        valid = ", ".join(self.valid)
        hint = f"did you mean {meant}?" if meant is not None else f"valid: {valid}"
        where = f" (set by {self.variable})" if self.variable else ""
        return f"{'.'.join(self.path)}: {what}{where}; {hint}"


def unknown_keys(
    model: type[BaseModel],
    data: Mapping[str, Any],
    store_types: StoreTypes,
    variables: Mapping[tuple[str, ...], str],
) -> list[UnknownKey]:
    """Every key of ``data`` that ``model`` does not declare, outermost first.

    ``[stores]`` holds ``default`` and one table per store, whose keys depend on its
    ``type`` (``store_types``); a store of an unknown type is left to validation, which says
    so. ``variables`` maps each key set from the environment to its variable's name.
    """
    finder = _Finder(store_types, variables)
    finder.visit((), data, declared_keys(model))
    return finder.found


def without(data: Mapping[str, Any], unknown: list[UnknownKey]) -> dict[str, Any]:
    """A copy of ``data`` without the ``unknown`` keys (the rest is validated as usual)."""
    copied = _deep_copy(data)
    for found in unknown:
        node: Any = copied
        for part in found.path[:-1]:
            node = node[part]
        node.pop(found.key, None)
    return copied


class _Finder:
    def __init__(self, store_types: StoreTypes, variables: Mapping[tuple[str, ...], str]) -> None:
        self._store_types = store_types
        self._variables = variables
        self.found: list[UnknownKey] = []

    def visit(
        self, path: tuple[str, ...], table: Mapping[str, Any], fields: dict[str, Any]
    ) -> None:
        for key, value in table.items():
            here = (*path, key)
            if key not in fields:
                self.found.append(UnknownKey(here, tuple(fields), self._variable(here)))
            elif here == ("stores",) and isinstance(value, Mapping):
                self._stores(value)
            elif isinstance(value, Mapping) and (inner := declared_keys(fields[key])):
                self.visit(here, value, inner)

    def _variable(self, path: tuple[str, ...]) -> str | None:
        """The variable that set ``path`` (or a key under it), if one did."""
        for where, name in self._variables.items():
            if where[: len(path)] == path:
                return name
        return None

    def _stores(self, stores: Mapping[str, Any]) -> None:
        for name, table in stores.items():
            if name == "default" or not isinstance(table, Mapping):
                continue
            kind = self._store_types.get(str(table.get("type")))
            if kind is not None:
                self.visit(("stores", name), table, declared_keys(kind))


def declared_keys(annotation: Any) -> dict[str, Any]:
    """The keys a model or dataclass declares (by their TOML names) and their types; empty
    for anything else (a free mapping such as ``[inject_metadata] properties``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {
            (info.alias or name): info.annotation for name, info in annotation.model_fields.items()
        }
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return {field.name: field.type for field in dataclasses.fields(annotation)}
    return {}


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def misspelt_variables(model: type[BaseModel], names: tuple[str, ...], prefix: str) -> list[str]:
    """What is wrong with each of ``names`` that reads as ``<prefix><SECTION>_<KEY>``: a
    variable spelt with one ``_`` where the rule wants ``__`` sets nothing."""
    sections = sorted(declared_keys(model), key=len, reverse=True)
    problems = []
    for name in names:
        rest = name[len(prefix) :].lower()
        section = next((s for s in sections if rest.startswith(f"{s}_") and rest != f"{s}_"), None)
        if section is not None:
            meant = f"{prefix}{section.upper()}__{rest[len(section) + 1 :].upper()}"
            problems.append(
                f"{name}: sets nothing (no __ after the section); did you mean {meant}?"
            )
    return problems
