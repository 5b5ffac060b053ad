"""The PolicyAdmin transports: the gRPC service (own port, with reflection) and the same
methods as JSON under /v1/ on the HTTP port, plus the settings page. Both call one
PolicyAdmin; this module only converts between wire formats and errors.

    GET  /v1/orgs/{org}/policy                GetPolicy
    POST /v1/orgs/{org}/policy:preview        PreviewPolicy   body {"policy": {...}}
    PUT  /v1/orgs/{org}/policy                SetPolicy       body {"policy": {...}, "expected_version": N}
    POST /v1/orgs/{org}/policy:enable         SetPolicyEnabled (enabled: true; requirements kept)
    POST /v1/orgs/{org}/policy:disable        SetPolicyEnabled (enabled: false; requirements kept)
    GET  /v1/providers                        ListProviders
    GET  /v1/orgs/{org}/security-events?limit ListSecurityEvents
    GET  /v1/orgs/{org}/audit-events?limit    ListAuditEvents
    PUT  /v1/orgs/{org}/custom-providers/{id} SetCustomProvider body {"provider": {...}}
    DEL  /v1/orgs/{org}/custom-providers/{id} DeleteCustomProvider
    PUT  /v1/orgs/{org}/alerts                SetAlerts       body {"alerts": {...}}
    GET  /v1/requirements                     ListRequirements
    GET  /settings                            the Settings -> Compliance page
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

import grpc
from aiohttp import web
from google.protobuf import json_format

from authz.admin.service import Message, PolicyAdmin
from authz.admin.validation import INVALID_ARGUMENT, AdminError, parse_error_text
from authz.httpguard import read_body
from authz.v1 import admin_pb2, admin_pb2_grpc

Handler = Callable[[web.Request], Awaitable[web.Response]]


class PolicyAdminServicer(admin_pb2_grpc.PolicyAdminServicer):
    def __init__(self, admin: PolicyAdmin):
        self.admin = admin

    async def _call(self, method: str, request: Message, context: grpc.aio.ServicerContext) -> Message:
        authorization = dict(context.invocation_metadata()).get("authorization")
        try:
            return await self.admin.call(method, authorization, request)
        except AdminError as exc:
            await context.abort(exc.kind.grpc_code, exc.message)

    async def GetPolicy(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self._call("GetPolicy", request, context)

    async def PreviewPolicy(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self._call("PreviewPolicy", request, context)

    async def SetPolicy(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self._call("SetPolicy", request, context)

    async def ListProviders(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self._call("ListProviders", request, context)

    async def ListSecurityEvents(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self._call("ListSecurityEvents", request, context)

    async def ListAuditEvents(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self._call("ListAuditEvents", request, context)

    async def SetCustomProvider(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self._call("SetCustomProvider", request, context)

    async def DeleteCustomProvider(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self._call("DeleteCustomProvider", request, context)

    async def SetPolicyEnabled(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self._call("SetPolicyEnabled", request, context)

    async def SetAlerts(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self._call("SetAlerts", request, context)

    async def ListRequirements(self, request: Message, context: grpc.aio.ServicerContext) -> Message:
        return await self._call("ListRequirements", request, context)


def _to_json(message: Message) -> web.Response:
    body = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return web.json_response(body)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class PolicyAdminHttp:
    def __init__(self, admin: PolicyAdmin, body_timeout_s: float = 10.0):
        self.admin = admin
        self.body_timeout_s = body_timeout_s

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/v1/orgs/{org}/policy", self._route("GetPolicy", admin_pb2.GetPolicyRequest, body=False))
        r.add_post("/v1/orgs/{org}/policy:preview", self._route("PreviewPolicy", admin_pb2.PreviewPolicyRequest))
        r.add_put("/v1/orgs/{org}/policy", self._route("SetPolicy", admin_pb2.SetPolicyRequest))
        r.add_post("/v1/orgs/{org}/policy:enable", self._route("SetPolicyEnabled", admin_pb2.SetPolicyEnabledRequest))
        r.add_post("/v1/orgs/{org}/policy:disable", self._route("SetPolicyEnabled", admin_pb2.SetPolicyEnabledRequest))
        r.add_get("/v1/providers", self._route("ListProviders", admin_pb2.ListProvidersRequest, body=False))
        r.add_get(
            "/v1/orgs/{org}/security-events",
            self._route("ListSecurityEvents", admin_pb2.ListSecurityEventsRequest, body=False),
        )
        r.add_get(
            "/v1/orgs/{org}/audit-events", self._route("ListAuditEvents", admin_pb2.ListAuditEventsRequest, body=False)
        )
        r.add_put(
            "/v1/orgs/{org}/custom-providers/{provider}",
            self._route("SetCustomProvider", admin_pb2.SetCustomProviderRequest),
        )
        r.add_delete(
            "/v1/orgs/{org}/custom-providers/{provider}",
            self._route("DeleteCustomProvider", admin_pb2.DeleteCustomProviderRequest, body=False),
        )
        r.add_put("/v1/orgs/{org}/alerts", self._route("SetAlerts", admin_pb2.SetAlertsRequest))
        r.add_get("/v1/requirements", self._route("ListRequirements", admin_pb2.ListRequirementsRequest, body=False))
        r.add_get("/settings", _settings_page)
        r.add_get("/settings/settings.js", _asset("settings.js", "text/javascript"))
        r.add_get("/settings/settings.css", _asset("settings.css", "text/css"))

    def _route(self, method: str, request_type: type[Message], body: bool = True) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            message = request_type()
            try:
                if body:
                    raw = await read_body(request, self.body_timeout_s)
                    try:
                        json_format.Parse(raw or b"{}", message)
                    except json_format.ParseError as exc:
                        raise AdminError(INVALID_ARGUMENT, f"invalid request body: {parse_error_text(exc)}") from None
                if "org" in request.match_info:
                    message.org_id = request.match_info["org"]
                if isinstance(message, admin_pb2.SetPolicyEnabledRequest):  # the path says which
                    message.enabled = request.path.endswith(":enable")
                if "provider" in request.match_info:
                    if isinstance(message, admin_pb2.SetCustomProviderRequest):
                        if message.provider.id and message.provider.id != request.match_info["provider"]:
                            raise AdminError(INVALID_ARGUMENT, "the provider id in the body differs from the path")
                        message.provider.id = request.match_info["provider"]
                    else:
                        message.provider_id = request.match_info["provider"]
                if "limit" in request.query:
                    try:
                        message.limit = int(request.query["limit"])
                    except ValueError:
                        raise AdminError(INVALID_ARGUMENT, "limit must be a whole number") from None
                result = await self.admin.call(method, request.headers.get("authorization"), message)
            except AdminError as exc:
                return _error(exc.kind.http_status, exc.kind.name, exc.message)
            return _to_json(result)

        return handle


# The page, its script and its stylesheet come only from this origin: no inline code runs, so
# an injected string can never become script on a page that holds an admin token.
_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def _read_asset(name: str) -> str:
    return resources.files("authz.admin.web").joinpath(name).read_text()


async def _settings_page(_request: web.Request) -> web.Response:
    return web.Response(text=_read_asset("settings.html"), content_type="text/html", headers=_SECURITY_HEADERS)


def _asset(name: str, content_type: str) -> Handler:
    async def handle(_request: web.Request) -> web.Response:
        return web.Response(text=_read_asset(name), content_type=content_type, headers=_SECURITY_HEADERS)

    return handle
