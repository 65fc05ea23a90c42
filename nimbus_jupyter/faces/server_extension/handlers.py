"""REST routes for the sidebar. Each one calls ``nimbus_jupyter.api``: the same code and the same registry
(``$NIMBUS_HOME`` of the server process, which kernels it starts inherit) as the magics. No state here.

- ``GET    /nimbus/api/targets``                   every registered target with its options and capabilities
- ``GET    /nimbus/api/deployments``               every deployment, status probed now
- ``GET    /nimbus/api/deployments/{name}``        one deployment
- ``DELETE /nimbus/api/deployments/{name}``        destroy it
- ``POST   /nimbus/api/deployments/{name}/predict`` test it: ``{"texts": [...], "fields": [...]}``
- ``GET    /nimbus/api/deployments/{name}/status``  health probed now, traffic, latency, cost (``api.status_report``)

Every route is authenticated (``@tornado.web.authenticated``) and then asks Jupyter's ``Authorizer``
(``@authorized``) about the resource ``"nimbus"``: reading is ``read``, destroying ``write``, and a
prediction ``execute`` (it runs the deployed pipeline, and on AWS costs money). A deploy has no route: the
sidebar deploys by executing code in a kernel, which the Authorizer governs as the ``kernels`` resource.

Errors are JSON ``{"error", "message", "todo"}``: 404 unknown name, 400 bad input (malformed JSON of any
depth too), 413 a body over the 6 MB an endpoint takes (answered here, never forwarded), 403 refused by the
Authorizer; the endpoint's own 4xx (unknown field, invalid text, throttled) pass through with its status
and message; 502 only when the endpoint itself failed or did not answer.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional

import tornado
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop

from ... import api
from ...core.errors import DeploymentNotFound, EndpointError, EndpointRejected, NimbusError, UserInputError
from ...core.registry import Registry
from ...runtime.limits import MAX_PAYLOAD_BYTES
from ...targets.registry import DEFAULT_TARGET, catalog
from ..sidebar_models import DeploymentInfo, ErrorInfo, PredictRequest, PredictResponse, StatusInfo, TargetInfo

NAME = r"(?P<name>[a-z][a-z0-9-]{0,39})"
AUTH_RESOURCE = "nimbus"
MAX_BODY_BYTES = MAX_PAYLOAD_BYTES  # what an endpoint takes at most (Lambda's 6 MB): more is refused here
_CODES = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


class BadRequest(UserInputError):
    """The route's own refusal of a request, with the status to answer."""

    def __init__(self, status: int, code: str, what: str, todo: str) -> None:
        self.status, self.code = status, code
        super().__init__(what, todo)


class NimbusHandler(APIHandler):
    """Runs the blocking api calls (probes, HTTP to endpoints) off the server's event loop."""

    auth_resource = AUTH_RESOURCE

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await IOLoop.current().run_in_executor(None, fn, *args)

    def answer(self, payload: Dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def fail(self, exc: Exception) -> None:
        if isinstance(exc, BadRequest):
            status, code = exc.status, exc.code
        elif isinstance(exc, DeploymentNotFound):
            status, code = 404, "not_found"
        elif isinstance(exc, UserInputError):
            status, code = 400, "bad_request"
        elif isinstance(exc, EndpointRejected):  # the caller's mistake as the endpoint saw it: its status, its words
            status, code = exc.status, exc.code or _CODES.get(exc.status, "bad_request")
            return self.answer(ErrorInfo(code, exc.message, "change the request as the message says").to_json(), status)
        elif isinstance(exc, EndpointError):
            status, code = 502, "endpoint_error"
        else:
            status, code = 500, "internal"
            self.log.exception("nimbus_jupyter: %s", exc)
        if isinstance(exc, NimbusError):
            where = f"{exc.where}: " if exc.where else ""
            info = ErrorInfo(code, where + exc.what, exc.todo)
        else:
            info = ErrorInfo(code, f"{type(exc).__name__}: {exc}", "see the Jupyter server's log")
        self.answer(info.to_json(), status)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors raised before a route runs (the Authorizer's 403, an unknown method) in the routes' own shape."""
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or reason
        todo = ("ask whoever runs this Jupyter server for the permission" if status_code == 403 else "")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(ErrorInfo(_CODES.get(status_code, "error"), str(message), todo).to_json()))

    def json_body(self) -> Any:
        """The request's JSON, bounded and parsed: 413 over MAX_BODY_BYTES, 400 when it is not JSON (at any depth)."""
        body = self.request.body or b""
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(413, "too_large",
                             f"the request body is {len(body):,} bytes, over the {MAX_BODY_BYTES:,} an endpoint takes",
                             "send fewer or shorter texts (%%nimbus_batch splits big inputs into requests that fit)")
        if not body:
            raise BadRequest(400, "bad_request", "the request body is empty", 'send {"texts": ["some text"]}')
        try:
            return json.loads(body)
        except RecursionError:  # nested deeper than the parser goes: not a request anyone means
            raise BadRequest(400, "bad_request", "the request body is nested too deeply to be a request",
                             'send {"texts": ["some text"]}')
        except ValueError as exc:
            detail = f": {exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise BadRequest(400, "bad_request", f"the request body is not JSON{detail}", 'send {"texts": ["some text"]}')


class TargetsHandler(NimbusHandler):
    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        try:
            classes = (await self.call(catalog)).classes
        except Exception as exc:
            return self.fail(exc)
        self.answer({"targets": [TargetInfo.of(name, cls).to_json() for name, cls in classes.items()],
                     "default": DEFAULT_TARGET})


class DeploymentsHandler(NimbusHandler):
    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        try:
            deployments = await self.call(api.list_deployments)
        except Exception as exc:
            return self.fail(exc)
        self.answer({"deployments": [DeploymentInfo.of(d).to_json() for d in deployments],
                     "home": str(Registry().home)})


class DeploymentHandler(NimbusHandler):
    @tornado.web.authenticated
    @authorized("read")
    async def get(self, name: str) -> None:
        try:
            deployment = await self.call(api.get_deployment, name)
        except Exception as exc:
            return self.fail(exc)
        self.answer(DeploymentInfo.of(deployment).to_json())

    @tornado.web.authenticated
    @authorized("write")
    async def delete(self, name: str) -> None:
        try:
            done = await self.call(api.destroy, name)
        except Exception as exc:
            return self.fail(exc)
        self.answer({"name": name, "message": done})


class PredictHandler(NimbusHandler):
    @tornado.web.authenticated
    @authorized("execute")
    async def post(self, name: str) -> None:
        try:
            request = PredictRequest.parse(self.json_body())
            deployment = await self.call(api.get_deployment, name)
            if not deployment.ready:
                raise UserInputError(f"{name!r} is {deployment.status}" + (f": {deployment.detail}" if deployment.detail else ""),
                                     f"deploy it again (%nimbus_deploy ... --name {name})")
            answer = await self.call(deployment.predict_answer, request.texts, request.fields)
        except Exception as exc:
            return self.fail(exc)
        self.answer(PredictResponse(answer["results"], answer["fields"], str(answer.get("version", ""))).to_json())


class StatusHandler(NimbusHandler):
    @tornado.web.authenticated
    @authorized("read")
    async def get(self, name: str) -> None:
        try:
            report = await self.call(api.status_report, name)
        except Exception as exc:
            return self.fail(exc)
        self.answer(StatusInfo.of(report).to_json())


HANDLERS = (("targets", TargetsHandler), ("deployments", DeploymentsHandler), (f"deployments/{NAME}", DeploymentHandler),
            (f"deployments/{NAME}/predict", PredictHandler), (f"deployments/{NAME}/status", StatusHandler))


def setup_handlers(web_app: Any, base_url: Optional[str] = None) -> None:
    base = url_path_join(base_url or web_app.settings["base_url"], "nimbus", "api")
    web_app.add_handlers(".*$", [(url_path_join(base, *path.split("/")) + "/?", handler) for path, handler in HANDLERS])
