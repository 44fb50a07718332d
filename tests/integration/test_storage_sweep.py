from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from adapters.storage.filesystem import FilesystemStorage


def test_temp_files_of_dead_writers_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path)
    host = socket.gethostname().replace(".", "_")
    folder = tmp_path / "videos" / "u"
    folder.mkdir(parents=True)
    dead = folder / f".v.mp4.{host}.999999.{'a' * 12}.part"
    live = folder / f".v.mp4.{host}.{os.getpid()}.{'b' * 12}.part"
    foreign_old = folder / f".v.mp4.otherhost.12.{'c' * 12}.part"
    foreign_new = folder / f".v.mp4.otherhost.13.{'d' * 12}.part"
    for path in (dead, live, foreign_old, foreign_new):
        path.write_bytes(b"partial")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(foreign_old, (two_days_ago, two_days_ago))

    assert storage.sweep_partial() == 2

    assert sorted(path.name for path in folder.iterdir()) == sorted([live.name, foreign_new.name])
