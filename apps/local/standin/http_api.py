"""The sidecar's HTTP API (DAPR_HTTP_PORT): health, service invocation, publish, metadata.

The SDK waits on `GET /v1.0/healthz/outbound` before its first call, and the services'
`/readyz` asks the same endpoint (`apps.shared.sidecar_health`); `invoke_method` uses
`/v1.0/invoke/<app-id>/method/<path>`. As in daprd, both health endpoints answer 204 when
healthy and 500 with `ERR_HEALTH_NOT_READY` when not, and `/v1.0/healthz` is healthy only
once the app channel is up (subscriptions read), `/healthz/outbound` as soon as the API
ports are open (https://docs.dapr.io/reference/api/health_api/). Publish over HTTP is served
too, for curl users. Every route but health needs `dapr-api-token` when the sidecar
has an API token (daprd's `DAPR_API_TOKEN`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apps.local.standin.cloudevents import is_json_content_type
from apps.local.standin.errors import DaprError
from apps.local.standin.protocols import BulkEntry, Instance, MeshApi

TOKEN_HEADER = "dapr-api-token"
# Headers that belong to one hop and are not forwarded to the target app.
_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "host",
        "content-length",
        TOKEN_HEADER,
    }
)
_VERBS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _error(error: DaprError) -> JSONResponse:
    return JSONResponse(
        {"errorCode": error.code, "message": error.message}, status_code=error.http_status
    )


def _event_bytes(event: object, content_type: str) -> bytes:
    """An entry's event as the bytes daprd publishes: a string as it is, unless the
    content type is JSON (then, like anything else, it is JSON-encoded)
    (daprd's `ConvertEventToBytes`)."""
    if isinstance(event, str) and not is_json_content_type(content_type):
        return event.encode("utf-8")
    return json.dumps(event, separators=(",", ":")).encode("utf-8")


def build_http_api(sidecar: Instance, mesh: MeshApi) -> Starlette:

    def authorized(request: Request) -> bool:
        token = sidecar.spec.api_token
        return not token or request.headers.get(TOKEN_HEADER) == token

    async def healthz(request: Request) -> Response:
        if not sidecar.attached.is_set():
            return _error(DaprError.health_not_ready())
        return Response(status_code=204)

    async def outbound_healthz(request: Request) -> Response:
        return Response(status_code=204)

    async def metadata(request: Request) -> Response:
        if not authorized(request):
            return _error(DaprError.unauthorized())
        return JSONResponse(mesh.describe(sidecar))

    async def publish(request: Request) -> Response:
        if not authorized(request):
            return _error(DaprError.unauthorized())
        params = request.query_params
        try:
            await mesh.publish(
                source=sidecar.app_id,
                pubsub_name=request.path_params["pubsub"],
                topic=request.path_params["topic"],
                data=await request.body(),
                content_type=request.headers.get("content-type", ""),
                metadata=_publish_metadata(params),
                call_trace=_call_trace(request),
            )
        except DaprError as error:
            return _error(error)
        return Response(status_code=204)

    async def publish_bulk(request: Request) -> Response:
        """`POST /v1.0-alpha1/publish/bulk/<pubsub>/<topic>`: a JSON array of entries
        (`entryId`, `event`, `contentType`, `metadata`). 204 when all were published;
        else 500 with `failedEntries` (`entryId`, `error`) and `errorCode`, as daprd's
        `onBulkPublish` (dapr/dapr pkg/api/http/http.go) answers."""
        if not authorized(request):
            return _error(DaprError.unauthorized())
        params = request.query_params
        topic = request.path_params["topic"]
        try:
            incoming = json.loads(await request.body())
            if not isinstance(incoming, list) or not all(isinstance(e, dict) for e in incoming):
                raise ValueError("the body must be a JSON array of entries")
            entries = [
                BulkEntry(
                    entry_id=str(entry.get("entryId") or ""),
                    data=_event_bytes(entry.get("event"), str(entry.get("contentType") or "")),
                    content_type=str(entry.get("contentType") or ""),
                    metadata={str(k): str(v) for k, v in (entry.get("metadata") or {}).items()},
                )
                for entry in incoming
            ]
        except (ValueError, AttributeError) as exc:
            return _error(DaprError.bad_bulk_body(topic, str(exc)))
        try:
            failed = await mesh.publish_bulk(
                source=sidecar.app_id,
                pubsub_name=request.path_params["pubsub"],
                topic=topic,
                entries=entries,
                metadata=_publish_metadata(params),
                call_trace=_call_trace(request),
            )
        except DaprError as error:
            return _error(error)
        if not failed:
            return Response(status_code=204)
        body = {
            "failedEntries": [
                {"entryId": entry_id, "error": str(error)} for entry_id, error in failed.items()
            ],
            "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE",
        }
        return JSONResponse(body, status_code=500)

    async def invoke(request: Request) -> Response:
        if not authorized(request):
            return _error(DaprError.unauthorized())
        headers = {
            name: value for name, value in request.headers.items() if name not in _HOP_HEADERS
        }
        try:
            result = await mesh.invoke(
                caller=sidecar.app_id,
                target_app=request.path_params["app_id"].split(".", 1)[0],
                verb=request.method,
                path="/" + request.path_params["method"],
                query=request.url.query,
                headers=headers,
                body=await request.body(),
            )
        except DaprError as error:
            return _error(error)
        passthrough = {
            name: value
            for name, value in result.headers.items()
            if name.lower() not in _HOP_HEADERS
        }
        return Response(content=result.content, status_code=result.status, headers=passthrough)

    async def not_found(request: Request, exc: Exception) -> Response:
        body = {"errorCode": "ERR_DIRECT_INVOKE", "message": f"unknown API {request.url.path}"}
        return Response(json.dumps(body), status_code=404, media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1.0/healthz", healthz, methods=["GET"]),
            Route("/v1.0/healthz/outbound", outbound_healthz, methods=["GET"]),
            Route("/v1.0/metadata", metadata, methods=["GET"]),
            Route("/v1.0/publish/{pubsub}/{topic:path}", publish, methods=["POST"]),
            Route(
                "/v1.0-alpha1/publish/bulk/{pubsub}/{topic:path}", publish_bulk, methods=["POST"]
            ),
            Route("/v1.0/invoke/{app_id}/method/{method:path}", invoke, methods=_VERBS),
        ],
        exception_handlers={404: not_found},
    )


def _publish_metadata(params: Mapping[str, str]) -> dict[str, str]:
    """A publish call's `metadata.<key>` query parameters, by key."""
    return {
        key.removeprefix("metadata."): value
        for key, value in params.items()
        if key.startswith("metadata.")
    }


def _call_trace(request: Request) -> dict[str, str]:
    """The caller's W3C trace headers, as daprd takes them for the published event."""
    return {
        name: request.headers[name]
        for name in ("traceparent", "tracestate")
        if name in request.headers
    }
