from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_point_inward_only_adapters_to_application_to_domain() -> None:
    lint = Path(sys.executable).with_name("lint-imports")

    run = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 kept, 0 broken" in run.stdout


def test_no_module_is_a_grab_bag() -> None:
    grab_bags = [
        path.relative_to(ROOT)
        for ring in ("domain", "application", "adapters")
        for path in (ROOT / ring).rglob("*.py")
        if path.stem in {"utils", "helpers", "misc", "common"}
    ]
    assert grab_bags == []
