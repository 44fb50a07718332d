"""The audit as a new user tries it: export, verify (clean, then after tampering), projections rebuild, the cipher
at rest, release-1 rows, and one user's view never showing another's."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from adapters.persistence import database as db
from application.event_log import EventLog
from tests.e2e.conftest import Cli
from tests.support.release_1 import write_release_1

pytestmark = pytest.mark.e2e

SHORT = ("--duration", "1", "--resolution", "480p")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, dict[str, Any]]:
    """One data folder with a few generations of two users, made once: tests that tamper work on a copy."""
    cli = Cli(tmp_path_factory.mktemp("audit"))
    generations = {}
    for name, prompt, user in (("ana_1", "a paper boat", "ana"), ("bo_1", "a heron", "bo"), ("ana_2", "a kite", "ana")):
        run = cli("generate", prompt, *SHORT, "--user", user, "--json")
        assert run.code == 0, run.stderr
        generations[name] = run.json()
    rejected = cli("generate", "too sharp", "--resolution", "8k", "--user", "ana", "--json")
    assert rejected.code == 2
    generations["ana_rejected"] = rejected.json()
    return cli, generations


@pytest.fixture
def copy(made: tuple[Cli, dict[str, Any]], tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    shutil.copytree(made[0].data, cli.data)
    return cli


def exported(cli: Cli, *args: str) -> list[dict[str, Any]]:
    out = cli.home / "audit.jsonl"
    run = cli("audit", "export", "--out", str(out), *args)
    assert run.code == 0, run.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def verified(cli: Cli) -> tuple[int, dict[str, Any]]:
    run = cli("audit", "verify", "--json")
    assert run.stdout.count("\n") == 1, run.stdout  # exactly one JSON value
    return run.code, run.json()


def test_audit_export_holds_every_event_of_every_generation_as_replay_shows_it(made: tuple[Cli, dict[str, Any]]) -> None:
    cli, generations = made

    lines = exported(cli)

    ids = [generation["generation_id"] for generation in generations.values()]
    assert {line["generation_id"] for line in lines} == set(ids)
    for generation_id in ids:
        replayed = cli("replay", generation_id, "--json").json()["events"]
        assert [line for line in lines if line["generation_id"] == generation_id] == replayed
    # Generated one after another, so the log holds each generation's events together, oldest first.
    firsts = [line["generation_id"] for line in lines if line["version"] == 1]
    assert firsts == ids
    assert all(set(line) == {"generation_id", "version", "type", "timestamp", "fields"} for line in lines)


def test_audit_export_of_one_user_since_a_day_holds_only_their_events(made: tuple[Cli, dict[str, Any]]) -> None:
    cli, generations = made

    bo = exported(cli, "--user", "bo", "--since", "2000-01-01")
    later = exported(cli, "--since", "2999-01-01")

    assert {line["generation_id"] for line in bo} == {generations["bo_1"]["generation_id"]}
    assert [line["type"] for line in bo][:2] == ["Requested", "Validated"] and bo[-1]["type"] == "Charged"
    assert later == []


def test_audit_export_refuses_a_date_that_is_not_one_and_a_folder_that_does_not_exist(
    made: tuple[Cli, dict[str, Any]],
) -> None:
    cli, _ = made

    bad_date = cli("audit", "export", "--since", "2024-02-30", "--out", str(cli.home / "x.jsonl"))
    no_folder = cli("audit", "export", "--out", str(cli.home / "missing" / "x.jsonl"))

    for run in (bad_date, no_folder):
        assert run.code == 2
        assert run.stderr.startswith("error:") and len(run.stderr.strip().splitlines()) == 1
        assert "Traceback" not in run.stderr
    assert not (cli.home / "x.jsonl").exists()


def test_audit_verify_passes_on_an_untouched_history(made: tuple[Cli, dict[str, Any]]) -> None:
    cli, _ = made

    code, report = verified(cli)
    text = cli("audit", "verify")

    assert (code, report["ok"], report["discrepancies"], report["provider_may_bill"]) == (0, True, [], [])
    assert report["checked"] == {"generations": 4, "charges": 3, "videos": 3}
    assert text.code == 0 and text.stdout.startswith("ok: 4 generations")


def test_audit_verify_exits_1_once_a_stored_video_is_overwritten(copy: Cli, made: tuple[Cli, dict[str, Any]]) -> None:
    generation = made[1]["bo_1"]
    video = copy.data / Path(generation["file_path"]).relative_to(made[0].data)
    video.write_bytes(b"\x00" * video.stat().st_size)  # same size, other bytes

    code, report = verified(copy)

    assert code == 1 and report["ok"] is False
    assert [(found["kind"], found["generation_id"]) for found in report["discrepancies"]] == [
        ("file_altered", generation["generation_id"])
    ]
    text = copy("audit", "verify")
    assert text.code == 1 and f"file_altered {generation['generation_id']}" in text.stdout


def test_audit_verify_exits_1_once_a_ledger_row_is_deleted(copy: Cli, made: tuple[Cli, dict[str, Any]]) -> None:
    generation = made[1]["ana_2"]
    with sqlite3.connect(copy.data / "videogen.db") as connection:
        deleted = connection.execute(
            "DELETE FROM usage_ledger WHERE generation_id = ?", (generation["generation_id"].replace("-", ""),)
        ).rowcount
    assert deleted == 1

    code, report = verified(copy)

    assert code == 1
    assert [(found["kind"], found["generation_id"]) for found in report["discrepancies"]] == [
        ("ledger_missing", generation["generation_id"])
    ]


def test_projections_rebuild_gives_the_same_history_as_before(copy: Cli) -> None:
    before = {user: copy("history", "--user", user, "--json").json() for user in ("ana", "bo")}

    run = copy("projections", "rebuild")

    assert run.code == 0, run.stderr
    assert [line.split()[1] for line in run.stdout.splitlines()] == ["generation_history", "usage_report", "asset_index"]
    assert {user: copy("history", "--user", user, "--json").json() for user in ("ana", "bo")} == before
    assert len(before["ana"]) == 3 and len(before["bo"]) == 1


def test_history_and_usage_of_one_user_never_show_another_users(made: tuple[Cli, dict[str, Any]]) -> None:
    cli, generations = made

    ana = {view["generation_id"] for view in cli("history", "--user", "ana", "--json").json()}
    bo = {view["generation_id"] for view in cli("history", "--user", "bo", "--json").json()}
    carla = cli("history", "--user", "carla", "--json").json()
    usage = {user: cli("usage", "--user", user, "--json").json() for user in ("ana", "bo", "carla")}

    assert ana == {generations[name]["generation_id"] for name in ("ana_1", "ana_2", "ana_rejected")}
    assert bo == {generations["bo_1"]["generation_id"]}
    assert carla == []
    assert [(usage[user]["user_id"], usage[user]["calls"]) for user in ("ana", "bo", "carla")] == [
        ("ana", 2), ("bo", 1), ("carla", 0)
    ]


def test_keygen_prints_a_fresh_aes_256_key_each_time(cli: Cli) -> None:
    first, second = cli("keygen"), cli("keygen")

    assert first.code == second.code == 0
    assert len(base64.b64decode(first.stdout.strip())) == 32
    assert first.stdout != second.stdout


def test_with_a_cipher_key_the_prompt_is_nowhere_in_the_database_files_yet_replay_shows_it(cli: Cli) -> None:
    cli.env["VIDEOGEN_CIPHER_KEY"] = cli("keygen").stdout.strip()
    prompt = "the secret word is quetzalcoatl-90210"

    run = cli("generate", prompt, *SHORT, "--json")

    assert run.code == 0, run.stderr
    generation_id = run.json()["generation_id"]
    files = sorted(cli.data.glob("videogen.db*"))
    assert cli.data / "videogen.db" in files
    for path in files:  # the database, and its -wal and -shm when they are there
        stored = path.read_bytes()
        leaks = [word for word in (prompt.encode(), b"quetzalcoatl") if word in stored]
        assert leaks == [], f"{path.name} holds {leaks}"
    replay = cli("replay", generation_id, "--json").json()
    assert replay["events"][0]["fields"]["prompt"] == prompt
    assert replay["state"]["prompt"] == prompt
    assert cli("audit", "verify").code == 0


def test_an_encrypted_history_read_without_its_key_or_with_another_names_the_key(cli: Cli) -> None:
    key = cli("keygen").stdout.strip()
    cli.env["VIDEOGEN_CIPHER_KEY"] = key
    assert cli("submit", "a kite", *SHORT).code == 0

    for other in (None, cli("keygen").stdout.strip()):
        if other is None:
            del cli.env["VIDEOGEN_CIPHER_KEY"]
        else:
            cli.env["VIDEOGEN_CIPHER_KEY"] = other
        run = cli("history", "--json")

        assert run.code == 2 and "Traceback" not in run.stderr
        assert run.stderr.startswith("error: invalid_value: ") and "VIDEOGEN_CIPHER_KEY" in run.stderr
        assert run.json()["field"] == "VIDEOGEN_CIPHER_KEY"
        assert key not in run.stderr + run.stdout and (other is None or other not in run.stderr + run.stdout)


def test_release_1_rows_replay_with_todays_classes_from_the_cli(cli: Cli) -> None:
    assert cli("models", "--json").code == 0  # a first run creates the database as a user's would
    log = EventLog(env=db.event_store_env(db.database_url(None, cli.data), cipher_key=None, compress=False))
    try:
        ids = write_release_1(log.recorder)
    finally:
        log.close()

    charged = cli("replay", str(ids["ana_charged"]), "--json")
    failed = cli("replay", str(ids["bruno_failed"]), "--json").json()

    assert charged.code == 0, charged.stderr
    events = {event["type"]: event["fields"] for event in charged.json()["events"]}
    assert list(events) == ["Requested", "Validated", "SubmitAttempted", "Submitted", "Completed", "Charged"]
    assert (events["Requested"]["source_module"], events["Requested"]["fingerprint"]) == ("unknown", None)
    assert (events["Validated"]["provider"], events["Validated"]["aspect_ratio"]) == ("wavespeed", "16:9")
    assert (events["Completed"]["timings"], events["Completed"]["has_nsfw_contents"]) == ({}, [])
    state = charged.json()["state"]
    assert (state["status"], state["provider"], state["cost"]) == ("completed", "wavespeed", "0.360")
    assert (failed["state"]["status"], failed["state"]["provider"], failed["state"]["code"]) == (
        "failed", "huggingface", "provider_timeout"
    )
    history = cli("history", "--user", "ana", "--json").json()
    assert [view["generation_id"] for view in history] == [str(ids["ana_validated"]), str(ids["ana_charged"])]
