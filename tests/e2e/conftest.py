from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

VIDEOGEN = str(Path(sys.executable).with_name("videogen"))


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """The installed `videogen` command, run as a user runs it, in a folder of its own."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.data = home / "data"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("VIDEOGEN_", "WAVESPEED_"))
        }
        self.env["VIDEOGEN_DATA_DIR"] = str(self.data)

    def __call__(self, *args: str, timeout: float = 120) -> Run:
        done = subprocess.run(
            [VIDEOGEN, *args], cwd=self.home, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "face.png"
    pixels = np.zeros((360, 480, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, 480, dtype=np.uint8)
    pixels[90:270, 160:320, 1] = 200
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    rate, seconds = 16000, 2.5
    t = np.arange(int(rate * seconds)) / rate
    samples = (np.sin(2 * np.pi * 220 * t) * 12000).astype("<i2")
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(samples.tobytes())
    return path
