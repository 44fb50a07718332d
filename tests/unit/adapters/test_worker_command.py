"""`videogen worker` writes its saves on its event loop (the HTTP server and embedding code keep the commit thread)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import adapters.cli.app as cli
from adapters.container import Container


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Container:
    monkeypatch.setenv("VIDEOGEN_DATA_DIR", str(tmp_path / "data"))
    for name in ("VIDEOGEN_DATABASE_URL", "VIDEOGEN_PROVIDER", "WAVESPEED_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    services = Container()
    monkeypatch.setattr(cli, "container", lambda: services)
    return services


def test_the_worker_command_writes_on_its_event_loop(services: Container) -> None:
    result = CliRunner().invoke(cli.app, ["worker", "--once"])

    assert result.exit_code == 0, result.output
    assert services.events().writing_on_loop


def test_other_commands_leave_the_log_on_its_commit_thread(services: Container) -> None:
    result = CliRunner().invoke(cli.app, ["history", "--json"])

    assert result.exit_code == 0, result.output
    assert not services.events().writing_on_loop
