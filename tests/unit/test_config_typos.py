"""No silent misconfiguration: a typo anywhere is named, in one wording, with what was meant."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.workers import IMGWORKER
from worker.config.keys import declared_keys
from worker.config.settings import STORE_TYPES, ConfigError, Settings, load_settings

#: A store of each type, valid as written: the typos below are added to it.
STORES = (
    '[stores]\ndefault = "central"\n'
    '[stores.central]\ntype = "file"\npath = "/srv/central"\n'
    '[stores.dcn0]\ntype = "rbd"\nconf = "/etc/ceph/dcn0.conf"\n'
)

#: (the table, a misspelt key written there, the key it meant): a typo in every section and
#: in each store type. ``config check`` says each as
#: ``TABLE.TYPO: unknown key in [TABLE]; did you mean KEY?``.
TYPOS = [
    ("database", "ulr", "url"),
    ("broker", "exchnage", "exchange"),
    ("worker", "concurency", "concurrency"),
    ("staging", "dri", "dir"),
    ("import", "convert_too", "convert_to"),
    ("safety", "alowed_ports", "allowed_ports"),
    ("signature", "require_sigature", "require_signature"),
    ("inject_metadata", "propertis", "properties"),
    ("api", "lisen", "listen"),
    ("cache", "max_sise", "max_size"),
    ("quotas", "cache_secnds", "cache_seconds"),
    ("keystone", "auth_ulr", "auth_url"),
    ("metadefs", "project_limt", "project_limit"),
    ("notifications", "drvier", "driver"),
    ("stores.central", "chunk_sise", "chunk_size"),
    ("stores.dcn0", "operation_timout", "operation_timeout"),
]

#: Environment variables with a typo, and what ``config check`` must say.
VARIABLES = {
    "IMGWORKER_STORES__CENTRAL__PTH": (
        "stores.central.pth: unknown key in [stores.central] (set by "
        "IMGWORKER_STORES__CENTRAL__PTH); did you mean path?"
    ),
    "IMGWORKER_WROKER__CONCURRENCY": (
        "wroker: unknown section (set by IMGWORKER_WROKER__CONCURRENCY); did you mean [worker]?"
    ),
    "IMGWORKER_WORKER_CONCURRENCY": (
        "IMGWORKER_WORKER_CONCURRENCY: sets nothing (no __ after the section); did you mean "
        "IMGWORKER_WORKER__CONCURRENCY?"
    ),
}


def _config(tmp_path: Path, typos: list[tuple[str, str, str]]) -> Path:
    tables: dict[str, list[str]] = {}
    for table, typo, _ in typos:
        tables.setdefault(table, []).append(f"{typo} = 1")
    text = STORES
    for table, lines in tables.items():
        if table.startswith("stores."):
            text = text.replace(f"[{table}]\n", f"[{table}]\n" + "\n".join(lines) + "\n")
        else:
            text += f"[{table}]\n" + "\n".join(lines) + "\n"
    path = tmp_path / "typos.toml"
    path.write_text(text)
    return path


def test_config_check_names_every_typo_once(tmp_path: Path) -> None:
    # The table has a typo in every section and store type the settings declare.
    assert {table for table, _, _ in TYPOS} >= {
        table.replace("stores.file", "stores.central").replace("stores.rbd", "stores.dcn0")
        for table, _ in _tables()
    }
    config = _config(tmp_path, TYPOS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGWORKER")}
    env.update(dict.fromkeys(VARIABLES, "1"))
    result = subprocess.run(
        [IMGWORKER, "--config", str(config), "config", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    problems = [line.removeprefix("  - ") for line in result.stderr.splitlines()[1:-1]]
    expected = [
        f"{table}.{typo}: unknown key in [{table}]; did you mean {meant}?"
        for table, typo, meant in TYPOS
    ] + list(VARIABLES.values())
    assert sorted(problems) == sorted(expected)
    assert result.stderr.startswith(f"{config}: {len(expected)} problem(s) in the configuration")
    # One wording: never the validation library's own.
    assert "Extra inputs" not in result.stderr and "keyword argument" not in result.stderr


def _tables() -> list[tuple[str, dict[str, object]]]:
    """Every table a configuration may have, with the keys it declares."""
    sections = [
        (name, declared_keys(annotation))
        for name, annotation in declared_keys(Settings).items()
        if name != "stores"
    ]
    stores = [(f"stores.{kind}", declared_keys(config)) for kind, config in STORE_TYPES.items()]
    return [(table, keys) for table, keys in sections + stores if keys]


@pytest.mark.parametrize(("table", "keys"), _tables(), ids=[t for t, _ in _tables()])
def test_a_misspelt_key_of_every_table_is_refused(
    tmp_path: Path, table: str, keys: dict[str, object]
) -> None:
    for key in keys:
        if key == "type":
            continue
        typo = f"{key}x"
        if table.startswith("stores."):
            kind = table.removeprefix("stores.")
            text = f'[stores]\ndefault = "s"\n[stores.s]\ntype = "{kind}"\npath = "/x"\n'
            text = text.replace('path = "/x"\n', 'path = "/x"\n' if kind == "file" else "")
            text += f"{typo} = 1\n"
            where = "stores.s"
        else:
            text = f"[{table}]\n{typo} = 1\n"
            where = table
        config = tmp_path / "one.toml"
        config.write_text(text)
        with pytest.raises(ConfigError) as refused:
            load_settings(config, environ={})
        assert f"{where}.{typo}: unknown key in [{where}]; did you mean {key}?" in str(
            refused.value
        )
