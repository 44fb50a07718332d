from __future__ import annotations

import functools
import os
import pty
import subprocess
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import av
import pytest

from tests.e2e.conftest import VIDEOGEN, Cli
from tests.support.live_server import serving_http

pytestmark = pytest.mark.e2e


def decoded(path: str) -> tuple[float, int, int, str, bool]:
    with av.open(path) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        seconds = frames / float(video.average_rate)
        has_audio = bool(container.streams.audio)
        return seconds, video.codec_context.width, video.codec_context.height, video.codec_context.name, has_audio


def test_a_text_to_video_leaves_a_playable_mp4_of_the_asked_length_and_a_replayable_history(cli: Cli) -> None:
    run = cli("generate", "a paper boat drifting down a rainy street", "--json")

    assert run.code == 0, run.stderr
    result = run.json()
    assert result["status"] == "completed" and result["stage"] == "Charged"
    assert result["cost"] == "0.00"
    seconds, width, height, codec, _ = decoded(result["file_path"])
    assert abs(seconds - 5.0) <= 0.1
    assert (width, height, codec) == (1280, 720, "h264")
    assert Path(result["file_path"]).is_relative_to(cli.data)

    replay = cli("replay", result["generation_id"], "--json").json()
    types = [event["type"] for event in replay["events"]]
    story = iter(types)
    assert all(step in story for step in ["Requested", "Validated", "Submitted", "Completed", "Charged"]), types
    assert [event["version"] for event in replay["events"]] == list(range(1, len(types) + 1))
    assert replay["state"]["status"] == "completed"
    assert cli("history", "--json").json()[0]["generation_id"] == result["generation_id"]


def test_replay_at_a_version_shows_the_state_as_it_was_then(cli: Cli) -> None:
    generation_id = cli("generate", "a lighthouse", "--duration", "1", "--resolution", "480p", "--json").json()["generation_id"]

    replay = cli("replay", generation_id, "--at-version", "2", "--json").json()

    assert [event["type"] for event in replay["events"]] == ["Requested", "Validated"]
    assert replay["state"]["status"] == "validated"


def test_image_to_video_from_a_png_makes_a_portrait_video_when_asked(cli: Cli, png: Path) -> None:
    run = cli(
        "generate", "--operation", "image-to-video", "--image", str(png), "--duration", "2",
        "--aspect-ratio", "9:16", "--resolution", "480p", "--json",
    )

    assert run.code == 0, run.stderr
    seconds, width, height, _, _ = decoded(run.json()["file_path"])
    assert abs(seconds - 2.0) <= 0.1 and (width, height) == (480, 854)


@pytest.fixture
def web(png: Path) -> Iterator[str]:
    """The png's folder served over HTTP on 127.0.0.1, as an input by URL is fetched from the web."""
    with serving_http(functools.partial(_Quiet, directory=str(png.parent))) as url:
        yield url


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_image_to_video_from_a_png_given_by_url(cli: Cli, png: Path, web: str) -> None:
    cli.env["VIDEOGEN_ALLOWED_INPUT_HOSTS"] = "127.0.0.1"
    run = cli(
        "generate", "--operation", "image-to-video", "--image", f"{web}/{png.name}", "--duration", "2",
        "--resolution", "480p", "--json",
    )

    assert run.code == 0, run.stderr
    seconds, width, height, _, _ = decoded(run.json()["file_path"])
    assert abs(seconds - 2.0) <= 0.1 and (width, height) == (854, 480)


def test_an_image_url_that_answers_404_exits_2_naming_the_url_and_charges_nothing(cli: Cli, web: str) -> None:
    cli.env["VIDEOGEN_ALLOWED_INPUT_HOSTS"] = "127.0.0.1"
    run = cli("generate", "--operation", "image-to-video", "--image", f"{web}/absent.png", "--json")

    assert run.code == 2
    assert run.stderr.startswith("error: missing_input: ") and run.stderr.strip().count("\n") == 0
    assert f"{web}/absent.png" in run.stderr and "404" in run.stderr
    assert run.json()["field"] == "image"
    assert cli("usage", "--json").json()["calls"] == 0


def test_an_image_url_on_a_private_address_exits_2_naming_the_setting_and_charges_nothing(
    cli: Cli, png: Path, web: str
) -> None:
    run = cli("generate", "--operation", "image-to-video", "--image", f"{web}/{png.name}", "--json")

    assert run.code == 2
    assert run.stderr.startswith("error: missing_input: ") and run.stderr.strip().count("\n") == 0
    assert "not a public address" in run.stderr and "VIDEOGEN_ALLOWED_INPUT_HOSTS" in run.stderr
    assert run.json()["field"] == "image"
    assert cli("usage", "--json").json()["calls"] == 0


def test_an_avatar_lasts_as_long_as_its_speech_and_carries_it_as_sound(cli: Cli, png: Path, wav: Path) -> None:
    run = cli("generate", "--operation", "avatar", "--image", str(png), "--audio", str(wav), "--resolution", "480p", "--json")

    assert run.code == 0, run.stderr
    seconds, width, height, _, has_audio = decoded(run.json()["file_path"])
    assert abs(seconds - 2.5) <= 0.1 and (width, height) == (854, 480) and has_audio


def test_enhance_scales_a_video_up_and_keeps_its_length(cli: Cli) -> None:
    source = cli("generate", "small", "--duration", "1", "--resolution", "480p", "--json").json()["file_path"]

    run = cli("generate", "--operation", "enhance", "--video", source, "--resolution", "1080p", "--json")

    assert run.code == 0, run.stderr
    seconds, width, height, _, _ = decoded(run.json()["file_path"])
    assert abs(seconds - 1.0) <= 0.1 and (width, height) == (1920, 1080)


@pytest.mark.parametrize(
    ("args", "code", "field"),
    [
        (["x", "--model", "no-such-model"], "unknown_model", "model"),
        (["x", "--duration", "7.5"], "invalid_duration", "duration"),
        (["x", "--duration", "0"], "invalid_duration", "duration"),
        (["   "], "missing_prompt", "prompt"),
        (["--operation", "image-to-video"], "missing_input", "image"),
        (["x", "--resolution", "8k"], "invalid_resolution", "resolution"),
        (["x", "--model", "hunyuan-video-1.5"], "provider_not_configured", "provider"),
        (["x", "--operation", "avatar", "--image", "/no/such/face.png", "--audio", "/no/such.wav"], "missing_input", "image"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line_and_charges_nothing(cli: Cli, args: list[str], code: str, field: str) -> None:
    run = cli("generate", *args, "--json")

    assert run.code == 2
    assert run.stderr.strip().count("\n") == 0 and run.stderr.startswith(f"error: {code}: ")
    assert "Traceback" not in run.stderr
    rejection = run.json()
    assert (rejection["status"], rejection["code"], rejection["field"]) == ("rejected", code, field)
    if code in ("unknown_model", "invalid_duration", "invalid_resolution"):
        assert rejection["allowed"]
    usage = cli("usage", "--json").json()
    assert (usage["calls"], usage["spent"], usage["reserved"]) == (0, "0.00", "0.00")


def test_an_audio_file_passed_as_the_image_is_refused_by_its_bytes_not_its_name(cli: Cli, wav: Path) -> None:
    disguised = wav.with_name("portrait.png")
    disguised.write_bytes(wav.read_bytes())

    run = cli("generate", "--operation", "image-to-video", "--image", str(disguised), "--json")

    assert run.code == 2
    assert run.json()["code"] == "wrong_media_type"
    assert "audio/wav" in run.stderr


@pytest.mark.parametrize("args", [["--duration", "abc", "x"], ["--operation", "nope", "x"], ["--bogus"]])
def test_argument_errors_exit_2_with_one_line_and_no_traceback(cli: Cli, args: list[str]) -> None:
    run = cli("generate", *args)

    assert run.code == 2
    assert run.stderr.startswith("error: ") and run.stderr.strip().count("\n") == 0
    assert run.stdout == ""


@pytest.mark.parametrize("args", [["--duration", "abc", "x"], ["--operation", "nope", "x"], ["--bogus"]])
def test_argument_errors_with_json_print_one_json_error_on_stdout(cli: Cli, args: list[str]) -> None:
    run = cli("generate", *args, "--json")

    assert run.code == 2
    assert run.json()["code"] == "invalid_value" and run.json()["message"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("VIDEOGEN_PROVIDER", "bogus"), ("VIDEOGEN_DEADLINE_S", "-5"), ("WAVESPEED_MAX_CONCURRENT", "0"),
     ("VIDEOGEN_COMPRESS", "maybe"), ("VIDEOGEN_CIPHER_KEY", "notakey-but-a-secret")],
)
def test_a_bad_setting_is_named_in_one_line_without_its_value(cli: Cli, variable: str, value: str) -> None:
    cli.env[variable] = value

    run = cli("history", "--json")

    assert run.code == 2 and "Traceback" not in run.stderr
    assert run.stderr.startswith(f"error: invalid_value: {variable}: ") and run.stderr.strip().count("\n") == 0
    assert run.json()["field"] == variable
    assert value not in run.stderr + run.stdout or value in ("0", "-5")


def test_videogen_alone_shows_the_help_and_no_error_line(cli: Cli) -> None:
    run = cli()

    assert "Usage: videogen" in run.stdout + run.stderr
    assert "error:" not in run.stderr


def test_a_user_id_cannot_steer_files_outside_the_data_folder(cli: Cli) -> None:
    before = {path.name for path in cli.home.parent.iterdir()}

    run = cli("generate", "escape", "--user", "../../etc", "--duration", "1", "--resolution", "480p", "--json")

    assert run.code == 0, run.stderr
    assert Path(run.json()["file_path"]).resolve().is_relative_to(cli.data.resolve())
    assert {path.name for path in cli.home.parent.iterdir()} == before
    assert sorted(path.name for path in cli.home.iterdir()) == ["data"]
    assert cli("history", "--user", "../../etc", "--json").json()[0]["user_id"] == "../../etc"
    assert cli("history", "--json").json() == []


def test_a_plan_limit_refuses_before_any_provider_call(cli: Cli) -> None:
    assert cli("plan", "set", "ana", "--calls", "1").code == 0
    assert cli("generate", "one", "--user", "ana", "--duration", "1", "--resolution", "480p").code == 0

    run = cli("generate", "two", "--user", "ana", "--duration", "1", "--json")

    assert run.code == 2 and run.json()["code"] == "quota_calls_exceeded"
    assert cli("usage", "--user", "ana", "--json").json()["calls"] == 1
    assert cli("plan", "show", "ana", "--json").json()["calls_limit"] == 1


def test_models_lists_the_catalogue_with_prices_in_words_and_numbers(cli: Cli) -> None:
    models = {model["id"]: model for model in cli("models", "--json").json()}

    hunyuan = models["wavespeed-ai/hunyuan-video-1.5/text-to-video"]
    assert hunyuan["durations"] == [5, 8, 10] and hunyuan["resolutions"] == ["480p", "720p"]
    assert hunyuan["price"]["rates"] == {"480p": "0.02", "720p": "0.04"} and "per second" in hunyuan["price"]["rule"]
    assert {"sandbox/text-to-video", "sandbox/image-to-video", "sandbox/avatar", "sandbox/enhance"} <= models.keys()


def test_generate_shows_a_progress_bar_on_a_terminal(cli: Cli) -> None:
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [VIDEOGEN, "generate", "a bar", "--duration", "1", "--resolution", "480p"],
        cwd=cli.home, env=cli.env, stdout=subprocess.PIPE, stderr=follower,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=120) == 0
    os.close(leader)
    assert b"100%" in shown and b"completed" in shown.lower()


def test_commands_started_together_on_a_new_data_folder_all_find_it_ready(cli: Cli) -> None:
    """A first `submit` and the worker beside it (or a few submits) create the database at the same moment."""
    started = [
        subprocess.Popen(
            [VIDEOGEN, "submit", f"boat {number}", "--duration", "1", "--resolution", "480p"],
            cwd=cli.home, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for number in range(8)
    ]
    finished = [(process.wait(timeout=120), *process.communicate()) for process in started]

    assert [code for code, _, _ in finished] == [0] * 8, [stderr for _, _, stderr in finished]
    assert len(cli("history", "--json").json()) == 8


def test_the_tables_show_whole_ids_that_a_pipe_can_find(cli: Cli) -> None:
    generation_id = cli("submit", "a boat", "--duration", "1", "--json").json()["generation_id"]

    history = cli("history")
    models = cli("models")

    assert history.code == 0 and generation_id in history.stdout
    assert models.code == 0 and "alibaba/wan-2.5/image-to-video" in models.stdout
    assert "…" not in history.stdout + models.stdout


def test_a_refusal_about_an_existing_generation_shows_it_as_it_is(cli: Cli) -> None:
    made = cli("submit", "a kite", "--duration", "1", "--idempotency-key", "k1", "--json").json()
    assert cli("cancel", made["generation_id"]).code == 0

    again = cli("cancel", made["generation_id"], "--json")
    conflict = cli("submit", "a boat", "--duration", "1", "--idempotency-key", "k1", "--json")

    assert again.code == 2
    assert (again.json()["generation_id"], again.json()["status"], again.json()["code"]) == (
        made["generation_id"], "cancelled", "already_finished"
    )
    assert conflict.code == 2
    assert (conflict.json()["generation_id"], conflict.json()["prompt"], conflict.json()["code"]) == (
        made["generation_id"], "a kite", "idempotency_conflict"
    )
