"""``imgworker config check``: every problem, where it is, and exit status 2."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from worker.commands import main


def test_every_problem_is_listed_with_its_place(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[worker]\nconcurrency = 0\nhttp = "nope"\n[stores]\ndefault = "x"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"])
    assert result.exit_code == 2
    assert "3 problem(s)" in result.output
    assert "worker.concurrency: Input should be greater than or equal to 1" in result.output
    assert "[worker] http = 'nope' is not host:port" in result.output
    assert "default store 'x' is not configured" in result.output


def test_environment_overrides_are_checked_too() -> None:
    result = CliRunner().invoke(
        main,
        ["config", "check"],
        env={"IMGWORKER_WORKER__LEASE_SECONDS": "10", "IMGWORKER_WORKER__HEARTBEAT_SECONDS": "8"},
    )
    assert result.exit_code == 2
    assert "heartbeat_seconds (8.0) must be at most half of lease_seconds" in result.output


def test_a_good_configuration_is_summarised(tmp_path: Path) -> None:
    config = tmp_path / "good.toml"
    config.write_text('[stores]\ndefault = "a"\n[stores.a]\ntype = "file"\npath = "/srv/a"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"], env={})
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.output and "a (file); default a" in result.output
