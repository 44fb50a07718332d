"""The `videogen` script: the CLI loads without FastAPI (which `serve` still imports as usual), and exits frozen."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

LOAD_THEN_SERVE_IMPORTS = """
import json, sys
from adapters.cli.launch import load
load()
loaded = {"fastapi": "fastapi" in sys.modules, "container": "adapters.container" in sys.modules}
from adapters.http.app import create_app
loaded["fastapi_for_serve"] = "fastapi" in sys.modules
print(json.dumps(loaded))
"""


def test_the_cli_loads_its_container_without_fastapi_and_serve_still_imports_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOAD_THEN_SERVE_IMPORTS], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"fastapi": False, "container": True, "fastapi_for_serve": True}


def test_a_process_that_already_has_fastapi_keeps_it() -> None:
    import fastapi.params

    from adapters.cli.launch import fastapi_left_out_of_wiring

    with fastapi_left_out_of_wiring():
        assert sys.modules["fastapi.params"] is fastapi.params
    assert sys.modules["fastapi.params"] is fastapi.params


def test_a_command_ends_with_every_object_frozen_and_its_exit_code_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.cli import launch

    def command() -> None:
        raise SystemExit(3)

    monkeypatch.setattr(launch, "load", lambda: command)
    gc.unfreeze()
    try:
        with pytest.raises(SystemExit) as ended:
            launch.main()
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()

    assert ended.value.code == 3
    assert frozen > 0
