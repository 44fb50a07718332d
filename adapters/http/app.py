"""The HTTP API: CONTRACT.md's JSON over FastAPI, as a router a host mounts or as an app of its own.

    services = build_services()                        # adapters.embedded: once per process
    app = create_app(services)                         # `videogen serve` runs this one
    host.include_router(videogen_router(services))     # or inside the host's app: its lifespan runs the worker

Every error is JSON `{"code", "message", "field"}` with CONTRACT.md's codes (plus `unauthenticated`,
`forbidden` and `invalid_signature`), whichever app the router is mounted in.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.catalogue import MODELS
from domain.errors import NotFound, Refusal
from application.views import GenerationView
from adapters.container import Container
from adapters.http.background import WORKER_CONCURRENCY, Background
from adapters.http.generation_body import BodyShapeError, NotTheCaller, openapi_request_body, read_generation_body
from adapters.http.identity import MAX_USER_ID, USER_HEADER, Identity, user_id_header
from adapters.http.status import PLAN_LIMITS, refusal_status
from adapters.http.webhooks import WaveSpeedWebhooks, WebhooksOff
from adapters.presentation import generation_json, model_json, replay_json, usage_json
from adapters.wavespeed.webhook import InvalidWebhook

DESCRIPTION = (
    "Generate video with AI through one service: every step recorded, nothing paid twice. "
    f"The caller is named by the `{USER_HEADER}` header unless the host plugs in its own resolver."
)
HTTP_ERROR_CODES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_value", "body"), 404: ("not_found", None), 405: ("method_not_allowed", None),
}


class ApiError(Exception):
    """An answer other than success, in CONTRACT.md's error shape."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, **extra: Any) -> None:
        self.status = status
        self.body = error_body(code, message, field, **extra)
        super().__init__(message)


def error_body(code: str, message: str | None, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "field": field, **extra}


def refusal_response(refusal: Refusal) -> JSONResponse:
    extra: dict[str, Any] = {"allowed": list(refusal.allowed)} if refusal.allowed else {}
    if refusal.generation_id is not None:
        extra["generation_id"] = str(refusal.generation_id)
    return JSONResponse(
        error_body(refusal.code, refusal.message, refusal.field, **extra), status_code=refusal_status(refusal.code)
    )


def validation_response(error: RequestValidationError) -> JSONResponse:
    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
    field = ".".join(location) or None
    message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
    # 400, not FastAPI's 422: one status for every bad input, whichever check finds it (the old backend's too).
    return JSONResponse(error_body("invalid_value", message, field), status_code=refusal_status("invalid_value"))


class ContractRoute(APIRoute):
    """Answers its route's errors in CONTRACT.md's shape, wherever the router is mounted (exception
    handlers belong to an app, and a host's app has its own)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handle(request)
            except ApiError as error:
                return JSONResponse(error.body, status_code=error.status)
            except Refusal as refusal:
                return refusal_response(refusal)
            except BodyShapeError as error:
                return JSONResponse(
                    error_body("invalid_value", error.message, error.field), status_code=refusal_status("invalid_value")
                )
            except NotTheCaller as error:
                return JSONResponse(error_body("forbidden", str(error), "user_id"), status_code=403)
            except RequestValidationError as error:
                return validation_response(error)
            except StarletteHTTPException as error:  # a multipart body Starlette cannot parse, in a host's app too
                return http_error_response(error)

        return answer


def parse_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(f"no generation {text!r} (not a generation id)", field="generation_id") from None


def videogen_router(
    services: Container,
    *,
    identity: Identity = user_id_header,
    background: Background | None = None,
    run_worker: bool = True,
    concurrency: int = WORKER_CONCURRENCY,
) -> APIRouter:
    """The API's routes. Its lifespan runs `background` (by default a worker advancing every generation)."""
    background = background or Background(services, run_worker=run_worker, concurrency=concurrency)
    router = APIRouter(route_class=ContractRoute, lifespan=background.lifespan, tags=["videogen"])
    secret = services.settings().wavespeed_webhook_secret
    webhooks = WaveSpeedWebhooks(secret.get_secret_value() if secret else None, services.history())

    async def caller(request: Request) -> str:
        user = identity(request)
        if inspect.isawaitable(user):
            user = await user
        if not user:
            if identity is user_id_header:
                raise ApiError(
                    401, "unauthenticated", f"who is asking? (no single {USER_HEADER} header names the caller)", USER_HEADER
                )
            raise ApiError(401, "unauthenticated", "who is asking? (the host's identity resolver named no one)")
        if len(user) > MAX_USER_ID:
            raise ApiError(400, "invalid_value", f"a user id has at most {MAX_USER_ID} characters", USER_HEADER)
        return str(user)

    def only_own(user: str, asked: str | None) -> None:
        if asked is not None and asked != user:
            raise ApiError(403, "forbidden", "only your own generations and usage can be read", "user")

    @router.post(
        "/generations",
        status_code=202,
        name="create_generation",
        summary="Ask for a video; it is made in the background",
        openapi_extra={"requestBody": openapi_request_body()},
    )
    async def create_generation(request: Request) -> Response:
        user = await caller(request)
        asked = await read_generation_body(request, user, request.headers.get("idempotency-key"))
        generation = await services.request_generation()(asked)
        view = services.queries().view(generation)
        if view.status == "rejected":
            return await asyncio.to_thread(rejected, services, view)
        location = str(request.url_for("get_generation", generation_id=str(view.generation_id)))
        return JSONResponse(generation_json(view), status_code=202, headers={"Location": location})

    @router.get("/generations", summary="Your generations, newest first")
    async def list_generations(
        request: Request,
        user_filter: str | None = Query(None, alias="user", description="Must be your own id"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        user = await caller(request)
        only_own(user, user_filter)
        views = await asyncio.to_thread(services.queries().history, user, limit)
        return [generation_json(view) for view in views]

    @router.get("/generations/{generation_id}", name="get_generation", summary="One of your generations")
    async def get_generation(request: Request, generation_id: str) -> dict[str, Any]:
        user = await caller(request)
        view = await asyncio.to_thread(services.queries().generation_for, user, parse_id(generation_id))
        return generation_json(view)

    @router.get("/generations/{generation_id}/events", summary="A generation's events and its state (a replay)")
    async def generation_events(
        request: Request, generation_id: str, at_version: int | None = Query(None, ge=1)
    ) -> dict[str, Any]:
        user = await caller(request)
        wanted = parse_id(generation_id)

        def read() -> dict[str, Any]:
            services.queries().generation_for(user, wanted)
            return replay_json(services.queries().replay(wanted, at_version))

        return await asyncio.to_thread(read)

    @router.get(
        "/generations/{generation_id}/video",
        summary="The video (streamed; Range requests answered 206)",
        response_class=FileResponse,
    )
    async def generation_video(request: Request, generation_id: str) -> FileResponse:
        user = await caller(request)
        view = await asyncio.to_thread(services.queries().generation_for, user, parse_id(generation_id))
        if not view.file_path or not Path(view.file_path).is_file():
            raise NotFound(f"generation {view.generation_id} has no video ({view.status})", field="generation_id")
        return FileResponse(
            view.file_path,
            media_type="video/mp4",
            filename=f"{view.generation_id}.mp4",
            content_disposition_type="inline",
        )

    @router.post("/generations/{generation_id}/cancel", summary="Cancel a generation that has not finished")
    async def cancel_generation(request: Request, generation_id: str) -> dict[str, Any]:
        user = await caller(request)
        wanted = parse_id(generation_id)
        await asyncio.to_thread(services.queries().generation_for, user, wanted)
        generation = await services.cancel_generation()(wanted)
        return generation_json(services.queries().view(generation))

    @router.get("/usage", summary="Your calls and dollars this month (UTC) against your plan")
    async def usage(
        request: Request, user_filter: str | None = Query(None, alias="user", description="Must be your own id")
    ) -> dict[str, Any]:
        user = await caller(request)
        only_own(user, user_filter)
        return usage_json(await asyncio.to_thread(services.queries().usage, user))

    @router.get("/models", summary="The model catalogue with prices")
    async def models() -> list[dict[str, Any]]:
        return [model_json(model) for model in MODELS]

    @router.post("/webhooks/wavespeed", summary="WaveSpeed's signed task deliveries")
    async def wavespeed_webhook(request: Request) -> dict[str, Any]:
        body = await request.body()
        try:
            delivery = await asyncio.to_thread(webhooks.receive, dict(request.headers), body)
        except WebhooksOff as error:
            raise ApiError(503, "provider_not_configured", str(error)) from None
        except InvalidWebhook as error:
            raise ApiError(401, "invalid_signature", str(error), "webhook-signature") from None
        if delivery.generation_id is not None:
            background.advance_now(delivery.generation_id)
        return {
            "status": delivery.outcome,
            "webhook_id": delivery.webhook_id,
            "task_id": delivery.task_id,
            "generation_id": str(delivery.generation_id) if delivery.generation_id else None,
        }

    return router


def rejected(services: Container, view: GenerationView) -> JSONResponse:
    """A request refused by the pre-flight: recorded as a rejected generation, answered as an error."""
    code = view.code or "refused"
    extra: dict[str, Any] = {"generation_id": str(view.generation_id), "generation": generation_json(view)}
    if view.allowed:
        extra["allowed"] = list(view.allowed)
    if code in PLAN_LIMITS:
        extra["usage_info"] = {**usage_json(services.queries().usage(view.user_id)), "limit_type": PLAN_LIMITS[code]}
    return JSONResponse(error_body(code, view.message, view.field, **extra), status_code=refusal_status(code))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    return http_error_response(error)


def http_error_response(error: StarletteHTTPException) -> JSONResponse:
    """Starlette's own refusals (a path it does not know, a body it cannot parse) in CONTRACT.md's shape."""
    code, field = HTTP_ERROR_CODES.get(error.status_code, ("http_error", None))
    return JSONResponse(
        error_body(code, str(error.detail), field), status_code=error.status_code, headers=getattr(error, "headers", None)
    )


def create_app(
    services: Container,
    *,
    identity: Identity = user_id_header,
    run_worker: bool = True,
    concurrency: int = WORKER_CONCURRENCY,
) -> FastAPI:
    """The whole API as an app of its own (OpenAPI at /openapi.json, docs at /docs)."""
    app = FastAPI(title="videogen", version="0.1.0", description=DESCRIPTION)
    app.include_router(
        videogen_router(services, identity=identity, run_worker=run_worker, concurrency=concurrency)
    )
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.state.services = services
    return app
