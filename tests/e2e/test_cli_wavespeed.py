from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli
from tests.support.wavespeed_standin import WaveSpeedStandIn

pytestmark = pytest.mark.e2e


@pytest.fixture
def standin() -> Iterator[WaveSpeedStandIn]:
    with WaveSpeedStandIn(task_seconds=0.3) as server:
        yield server


@pytest.fixture
def wavespeed_cli(cli: Cli, standin: WaveSpeedStandIn) -> Cli:
    cli.env.update(WAVESPEED_API_KEY=standin.api_key, WAVESPEED_BASE_URL=standin.url)
    return cli


def test_with_a_key_the_cli_generates_through_wavespeed_at_the_catalogue_price(
    wavespeed_cli: Cli, standin: WaveSpeedStandIn
) -> None:
    run = wavespeed_cli("generate", "a paper boat drifting down a rainy street", "--json")

    assert run.code == 0, run.stderr
    result = run.json()
    assert (result["provider"], result["model"]) == ("wavespeed", "wavespeed-ai/hunyuan-video-1.5/text-to-video")
    assert result["cost"] == "0.20"
    assert Path(result["file_path"]).read_bytes() == standin.video
    assert len(standin.created()) == 1
    assert wavespeed_cli("usage", "--json").json()["spent"] == "0.20"
    written = [path for path in wavespeed_cli.data.rglob("*") if path.is_file()]
    assert any(path.name == "videogen.log" for path in written)
    assert not any(standin.api_key.encode() in path.read_bytes() for path in written)


def test_a_provider_failure_exits_1_with_one_line_and_no_traceback(wavespeed_cli: Cli, standin: WaveSpeedStandIn) -> None:
    standin.fail("submit", status=402)

    run = wavespeed_cli("generate", "x", "--json")

    assert run.code == 1
    assert run.json()["code"] == "insufficient_balance"
    assert "Traceback" not in run.stderr and standin.api_key not in run.stderr + run.stdout


def test_an_option_and_an_aspect_ratio_reach_the_model(wavespeed_cli: Cli, standin: WaveSpeedStandIn) -> None:
    run = wavespeed_cli(
        "generate", "x", "--model", "veo3.1", "--duration", "4", "--aspect-ratio", "9:16",
        "--option", "generate_audio=false", "--json",
    )

    assert run.code == 0, run.stderr
    body = standin.submits()[0].json
    assert body["aspect_ratio"] == "9:16" and body["generate_audio"] is False


def test_asking_for_wavespeed_without_a_key_is_refused_before_any_call(cli: Cli) -> None:
    cli.env["VIDEOGEN_PROVIDER"] = "wavespeed"

    run = cli("generate", "x", "--json")

    assert run.code == 2 and run.json()["code"] == "provider_not_configured"
    assert "WAVESPEED_API_KEY" in run.stderr
