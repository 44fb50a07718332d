"""`videogen serve` without the optional HTTP extra: a clear message and exit 2, never a traceback."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from adapters.cli.app import app


@pytest.mark.parametrize("missing", ["uvicorn", "fastapi"])
def test_serve_without_the_http_extra_says_how_to_install_it_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # makes `import <missing>` fail as if not installed
    monkeypatch.delitem(sys.modules, "adapters.http.app", raising=False)

    result = CliRunner().invoke(app, ["serve", "--port", "0"])

    assert result.exit_code == 2
    assert 'pip install "videogen[http]"' in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
