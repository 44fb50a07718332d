"""The HTTP API through httpx's ASGI transport, on the sandbox provider (480p, 1 s: fast)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.container import Container
from adapters.embedded import build_services
from adapters.http.app import create_app, videogen_router
from adapters.settings import Settings
from adapters.wavespeed.webhook import signature
from tests.support.media_files import png_bytes

FAST = {"resolution": "480p", "duration": 1}
ANA = {"X-User-Id": "ana"}
BEN = {"X-User-Id": "ben"}
GENERATION_KEYS = {
    "generation_id", "status", "stage", "user_id", "operation", "provider", "model", "prompt", "duration",
    "resolution", "width", "height", "file_path", "sha256", "bytes", "asset_id", "cost", "created_at", "updated_at",
}
SECRET = "whsec_test-secret"


def sandbox(tmp_path: Path, **settings: Any) -> Container:
    return build_services(Settings(data_dir=tmp_path / "data", provider="sandbox", wavespeed_api_key=None, **settings))


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield client


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout=120))


async def finished(client: httpx.AsyncClient, generation_id: str, headers: dict[str, str] = ANA) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = await client.get(f"/generations/{generation_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] in ("completed", "failed", "rejected", "cancelled"):
            return answer.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"generation {generation_id} did not finish")


async def post(client: httpx.AsyncClient, headers: dict[str, str] = ANA, **body: Any) -> httpx.Response:
    return await client.post("/generations", json={"prompt": "a paper boat", **FAST, **body}, headers=headers)


def test_a_posted_generation_is_accepted_202_with_its_location_and_made_in_the_background(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services)) as client:
            answer = await post(client)
            assert answer.status_code == 202, answer.text
            body = answer.json()
            assert GENERATION_KEYS <= set(body)
            assert (body["status"], body["user_id"], body["source_module"]) == ("validated", "ana", "http")
            assert answer.headers["location"] == f"http://test/generations/{body['generation_id']}"

            done = await finished(client, body["generation_id"])
            assert done["status"] == "completed" and done["stage"] == "Charged"
            assert (done["width"], done["height"]) == (854, 480)

    run(test)


def test_the_video_streams_whole_and_answers_range_requests_with_206(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services)) as client:
            generation_id = (await post(client)).json()["generation_id"]
            done = await finished(client, generation_id)
            stored = Path(done["file_path"]).read_bytes()

            whole = await client.get(f"/generations/{generation_id}/video", headers=ANA)
            part = await client.get(f"/generations/{generation_id}/video", headers={**ANA, "Range": "bytes=100-1099"})
            tail = await client.get(f"/generations/{generation_id}/video", headers={**ANA, "Range": "bytes=-50"})

            assert whole.status_code == 200 and whole.content == stored
            assert whole.headers["content-type"] == "video/mp4"
            assert hashlib.sha256(whole.content).hexdigest() == done["sha256"]
            assert part.status_code == 206 and part.content == stored[100:1100]
            assert part.headers["content-range"] == f"bytes 100-1099/{len(stored)}"
            assert tail.status_code == 206 and tail.content == stored[-50:]

    run(test)


def test_the_events_replay_the_whole_life_of_a_generation(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services)) as client:
            generation_id = (await post(client)).json()["generation_id"]
            await finished(client, generation_id)

            replay = (await client.get(f"/generations/{generation_id}/events", headers=ANA)).json()
            early = (await client.get(f"/generations/{generation_id}/events?at_version=2", headers=ANA)).json()

            assert [event["type"] for event in replay["events"]] == [
                "Requested", "Validated", "SubmitAttempted", "Submitted", "Completed", "Charged",
            ]
            assert [event["version"] for event in replay["events"]] == [1, 2, 3, 4, 5, 6]
            assert replay["state"]["status"] == "completed"
            assert early["state"]["status"] == "validated" and len(early["events"]) == 2

    run(test)


@pytest.mark.parametrize("form", ["data-uri", "base64-field", "multipart"])
def test_an_image_comes_as_a_data_uri_a_base64_field_or_a_multipart_file(tmp_path: Path, form: str) -> None:
    services = sandbox(tmp_path)
    image = png_bytes()
    encoded = base64.b64encode(image).decode()
    fields = {"operation": "image-to-video", "prompt": "waves", **FAST}

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            if form == "data-uri":
                answer = await client.post(
                    "/generations", json={**fields, "inputs": {"image": f"data:image/png;base64,{encoded}"}}, headers=ANA
                )
            elif form == "base64-field":
                answer = await client.post("/generations", json={**fields, "image_base64": encoded}, headers=ANA)
            else:
                answer = await client.post(
                    "/generations",
                    data={key: str(value) for key, value in fields.items()},
                    files={"image": ("face.png", image, "image/png")},
                    headers=ANA,
                )
            assert answer.status_code == 202, answer.text
            replay = (await client.get(f"/generations/{answer.json()['generation_id']}/events", headers=ANA)).json()
            kept = replay["events"][0]["fields"]["inputs"]["image"]
            assert kept["sha256"] == hashlib.sha256(image).hexdigest() and kept["mime"] == "image/png"
            assert replay["state"]["model"] == "sandbox/image-to-video"

    run(test)


def test_a_multipart_generation_is_made_to_the_end(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services)) as client:
            answer = await client.post(
                "/generations",
                data={"operation": "image-to-video", "resolution": "480p", "duration": "1", "options": "{}"},
                files={"image": ("face.png", png_bytes(), "image/png")},
                headers=ANA,
            )
            assert answer.status_code == 202, answer.text
            assert (await finished(client, answer.json()["generation_id"]))["status"] == "completed"

    run(test)


def test_a_local_path_as_an_input_is_refused_so_no_caller_makes_the_server_read_its_files(tmp_path: Path) -> None:
    services = sandbox(tmp_path)
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes())

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            answer = await client.post(
                "/generations", json={"operation": "image-to-video", "inputs": {"image": str(secret)}}, headers=ANA
            )
            assert answer.status_code == 400
            assert (answer.json()["code"], answer.json()["field"]) == ("invalid_value", "image")

    run(test)


def test_an_input_url_on_the_servers_own_network_is_refused_before_it_is_fetched(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            answer = await client.post(
                "/generations",
                json={"operation": "image-to-video", "inputs": {"image": "https://127.0.0.1:1/admin/photo.png"}},
                headers=ANA,
            )
            assert answer.status_code == 400
            refusal = answer.json()
            assert (refusal["code"], refusal["field"]) == ("missing_input", "image")
            assert "127.0.0.1 is not a public address" in refusal["message"]
            usage = (await client.get("/usage", headers=ANA)).json()
            assert (usage["calls"], usage["reserved"]) == (0, "0.00")

    run(test)


def test_without_an_identity_every_users_route_answers_401_unauthenticated(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            for method, path in [
                ("POST", "/generations"), ("GET", "/generations"), ("GET", "/usage"),
                ("GET", "/generations/00000000-0000-0000-0000-000000000000"),
            ]:
                answer = await client.request(method, path, json={"prompt": "x"})
                assert answer.status_code == 401, (method, path)
                assert answer.json()["code"] == "unauthenticated"
            assert (await client.get("/models")).status_code == 200

    run(test)


def test_bad_input_is_answered_400_with_contract_codes_naming_the_field(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            unknown = await post(client, model="stable-video-diffusion")
            wrong_type = await post(client, duration="five")
            unconfigured = await post(client, model="wavespeed-ai/hunyuan-video-1.5/text-to-video")
            not_json = await client.post("/generations", content=b"{", headers={**ANA, "content-type": "application/json"})
            bad_limit = await client.get("/generations?limit=0", headers=ANA)
            extra = await post(client, colour="blue")
            nested = b'{"prompt": "x", "options": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
            too_deep = await client.post("/generations", content=nested, headers={**ANA, "content-type": "application/json"})
            too_long = await post(client, prompt="x" * 20_000)
            truth = await post(client, duration=True)

            assert unknown.status_code == 400
            assert (unknown.json()["code"], unknown.json()["field"]) == ("unknown_model", "model")
            assert unknown.json()["generation"]["status"] == "rejected"
            assert "sandbox/text-to-video" in unknown.json()["allowed"]
            assert unknown.json()["generation"]["allowed"] == unknown.json()["allowed"]
            assert wrong_type.status_code == 400
            assert (wrong_type.json()["code"], wrong_type.json()["field"]) == ("invalid_value", "duration")
            assert unconfigured.status_code == 400 and unconfigured.json()["code"] == "provider_not_configured"
            assert not_json.status_code == 400 and not_json.json()["code"] == "invalid_value"
            assert bad_limit.status_code == 400 and bad_limit.json()["field"] == "limit"
            assert extra.status_code == 400 and extra.json()["field"] == "colour"
            assert too_deep.status_code == 400 and (too_deep.json()["code"], too_deep.json()["field"]) == ("invalid_value", "body")
            assert too_long.status_code == 400 and (too_long.json()["code"], too_long.json()["field"]) == ("prompt_too_long", "prompt")
            assert truth.status_code == 400 and (truth.json()["code"], truth.json()["field"]) == ("invalid_value", "duration")
            assert len(too_long.content) < 1000  # refused before it is recorded, so not sent back
            listed = (await client.get("/generations", headers=ANA)).json()
            assert listed and all(len(item["prompt"] or "") < 20_000 for item in listed)
            for answer in (unknown, wrong_type, not_json, bad_limit, extra, too_deep, too_long):
                assert {"code", "message", "field"} <= set(answer.json())

    run(test)


def test_a_plan_limit_is_answered_429_with_usage_info(tmp_path: Path) -> None:
    services = sandbox(tmp_path)
    services.manage_plans().set("ana", calls=1, dollars=Decimal("0"), models=[])

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            assert (await post(client)).status_code == 202
            refused = await post(client)
            assert refused.status_code == 429
            assert refused.json()["code"] == "quota_calls_exceeded"
            assert refused.json()["usage_info"]["limit_type"] == "video_calls"
            assert refused.json()["usage_info"]["calls"] == 1

    run(test)


def test_nobody_reads_another_users_generations_events_video_or_usage(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services)) as client:
            generation_id = (await post(client)).json()["generation_id"]
            await finished(client, generation_id)

            for path in ("", "/events", "/video"):
                answer = await client.get(f"/generations/{generation_id}{path}", headers=BEN)
                assert answer.status_code == 404 and answer.json()["code"] == "not_found", path
            cancel = await client.post(f"/generations/{generation_id}/cancel", headers=BEN)
            assert cancel.status_code == 404
            for path in ("/generations?user=ana", "/usage?user=ana"):
                answer = await client.get(path, headers=BEN)
                assert answer.status_code == 403 and answer.json()["code"] == "forbidden", path
            impostor = await post(client, headers=BEN, user_id="ana")
            assert impostor.status_code == 403 and impostor.json()["code"] == "forbidden"
            assert (await client.get("/generations", headers=BEN)).json() == []
            assert (await client.get("/generations?user=ana", headers=ANA)).status_code == 200

    run(test)


def test_history_lists_only_the_callers_generations_newest_first(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            made = [(await post(client, prompt=f"boat {n}")).json()["generation_id"] for n in range(3)]
            await post(client, headers=BEN)

            listed = (await client.get("/generations", headers=ANA)).json()
            limited = (await client.get("/generations?limit=2", headers=ANA)).json()

            assert [item["generation_id"] for item in listed] == made[::-1]
            assert {item["user_id"] for item in listed} == {"ana"}
            assert len(limited) == 2

    run(test)


def test_cancel_ends_an_unfinished_generation_and_a_second_cancel_is_409_already_finished(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            generation_id = (await post(client)).json()["generation_id"]
            no_video = await client.get(f"/generations/{generation_id}/video", headers=ANA)

            first = await client.post(f"/generations/{generation_id}/cancel", headers=ANA)
            second = await client.post(f"/generations/{generation_id}/cancel", headers=ANA)

            assert no_video.status_code == 404 and no_video.json()["code"] == "not_found"
            assert first.status_code == 200 and first.json()["status"] == "cancelled"
            assert second.status_code == 409 and second.json()["code"] == "already_finished"
            assert second.json()["generation_id"] == generation_id
            usage = (await client.get("/usage", headers=ANA)).json()
            assert usage["reserved"] == "0.00"

    run(test)


def test_the_same_idempotency_key_gives_the_same_generation(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            first = await post(client, headers={**ANA, "Idempotency-Key": "order-7"})
            again = await post(client, headers={**ANA, "Idempotency-Key": "order-7"})
            other = await post(client, prompt="another boat", headers={**ANA, "Idempotency-Key": "order-7"})

            assert first.json()["generation_id"] == again.json()["generation_id"]
            assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
            assert other.json()["generation_id"] == first.json()["generation_id"]

    run(test)


def test_usage_models_and_the_openapi_schema_are_served(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            usage = (await client.get("/usage", headers=ANA)).json()
            models = (await client.get("/models")).json()
            schema = (await client.get("/openapi.json")).json()
            docs = await client.get("/docs")

            assert {"user_id", "period", "plan", "calls", "calls_limit", "spent", "reserved", "dollars_limit"} <= set(usage)
            assert usage["user_id"] == "ana"
            assert "wavespeed-ai/hunyuan-video-1.5/text-to-video" in {model["id"] for model in models}
            assert {
                "/generations", "/generations/{generation_id}", "/generations/{generation_id}/events",
                "/generations/{generation_id}/video", "/generations/{generation_id}/cancel", "/usage", "/models",
                "/webhooks/wavespeed",
            } <= set(schema["paths"])
            body = schema["paths"]["/generations"]["post"]["requestBody"]["content"]
            assert {"application/json", "multipart/form-data"} <= set(body)
            assert docs.status_code == 200

    run(test)


def test_a_host_plugs_in_its_own_identity_resolver(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def from_token(request: Any) -> str | None:
        token = request.headers.get("authorization", "")
        return {"Bearer t-ana": "ana"}.get(token)

    async def test() -> None:
        async with client_of(create_app(services, identity=from_token, run_worker=False)) as client:
            trusted = await post(client, headers={"Authorization": "Bearer t-ana"})
            header_only = await post(client, headers=ANA)

            assert trusted.status_code == 202 and trusted.json()["user_id"] == "ana"
            assert header_only.status_code == 401

    run(test)


def test_the_router_mounted_in_a_host_app_runs_its_worker_and_keeps_the_error_shape(tmp_path: Path) -> None:
    services = sandbox(tmp_path)
    host = FastAPI()

    @host.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    host.include_router(videogen_router(services), prefix="/video")

    async def test() -> None:
        async with client_of(host) as client:
            answer = await client.post("/video/generations", json={"prompt": "a boat", **FAST}, headers=ANA)
            assert answer.status_code == 202
            assert answer.headers["location"].endswith(f"/video/generations/{answer.json()['generation_id']}")
            refused = await client.get("/video/generations")
            assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
            no_boundary = await client.post(
                "/video/generations", content=b"--x--", headers={**ANA, "content-type": "multipart/form-data"}
            )
            assert no_boundary.status_code == 400
            assert (no_boundary.json()["code"], no_boundary.json()["field"]) == ("invalid_value", "body")
            assert (await client.get("/health")).json() == {"status": "ok"}
            deadline = time.monotonic() + 60
            while (state := (await client.get(answer.headers["location"], headers=ANA)).json())["status"] != "completed":
                assert time.monotonic() < deadline, state
                await asyncio.sleep(0.1)

    run(test)


def signed(body: bytes, *, secret: str = SECRET, webhook_id: str = "msg-1", at: int | None = None) -> dict[str, str]:
    timestamp = str(at if at is not None else int(time.time()))
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": f"v3,{signature(secret, webhook_id, timestamp, body)}",
        "content-type": "application/json",
    }


def test_a_webhook_is_checked_before_anything_and_duplicates_are_harmless(tmp_path: Path) -> None:
    services = sandbox(tmp_path, wavespeed_webhook_secret=SECRET)
    body = json.dumps({"id": "task-nobody-knows", "status": "completed", "outputs": []}).encode()

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            forged = await client.post("/webhooks/wavespeed", content=body, headers=signed(body, secret="whsec_guess"))
            stale = await client.post("/webhooks/wavespeed", content=body, headers=signed(body, at=int(time.time()) - 3600))
            unsigned = await client.post("/webhooks/wavespeed", content=body)
            first = await client.post("/webhooks/wavespeed", content=body, headers=signed(body))
            again = await client.post("/webhooks/wavespeed", content=body, headers=signed(body))
            no_id = b'{"status": "completed"}'
            shapeless = await client.post("/webhooks/wavespeed", content=no_id, headers=signed(no_id, webhook_id="msg-2"))

            for refused in (forged, stale, unsigned):
                assert refused.status_code == 401 and refused.json()["code"] == "invalid_signature"
            assert first.status_code == 200 and first.json()["status"] == "unknown_task"
            assert again.status_code == 200 and again.json()["status"] == "duplicate"
            assert shapeless.status_code == 400

    run(test)


def test_without_a_webhook_secret_deliveries_are_refused_503(tmp_path: Path) -> None:
    services = sandbox(tmp_path)
    body = b'{"id": "t"}'

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            answer = await client.post("/webhooks/wavespeed", content=body, headers=signed(body))
            assert answer.status_code == 503 and answer.json()["code"] == "provider_not_configured"

    run(test)


def test_an_x_user_id_header_given_twice_names_no_one(tmp_path: Path) -> None:
    services = sandbox(tmp_path)

    async def test() -> None:
        async with client_of(create_app(services, run_worker=False)) as client:
            twice = [("X-User-Id", "mallory"), ("X-User-Id", "ana")]
            answer = await client.get("/usage", headers=twice)
            assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated"
            assert (await client.get("/usage", headers=[("X-User-Id", "ana")])).json()["user_id"] == "ana"

    run(test)
