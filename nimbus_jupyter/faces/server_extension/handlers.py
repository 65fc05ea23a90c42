"""REST routes for the sidebar. Each one calls ``nimbus_jupyter.api``: the same code and the same registry
(``$NIMBUS_HOME`` of the server process, which kernels it starts inherit) as the magics. No state here.

- ``GET    /nimbus/api/targets``                   every registered target with its options and capabilities
- ``GET    /nimbus/api/deployments``               every deployment, status probed now
- ``GET    /nimbus/api/deployments/{name}``        one deployment
- ``DELETE /nimbus/api/deployments/{name}``        destroy it
- ``POST   /nimbus/api/deployments/{name}/predict`` test it: ``{"texts": [...], "fields": [...]}``
- ``GET    /nimbus/api/deployments/{name}/status``  health probed now, traffic, latency, cost (``api.status_report``)

Errors are JSON ``{"error", "message", "todo"}``: 404 unknown name, 400 bad input, 502 endpoint failure.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict

import tornado
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop

from ... import api
from ...core.errors import DeploymentNotFound, EndpointError, NimbusError, UserInputError
from ...core.registry import Registry
from ...targets.registry import DEFAULT_TARGET, catalog
from ..sidebar_models import DeploymentInfo, ErrorInfo, PredictRequest, PredictResponse, StatusInfo, TargetInfo

NAME = r"(?P<name>[a-z][a-z0-9-]{0,39})"


class NimbusHandler(APIHandler):
    """Runs the blocking api calls (probes, HTTP to endpoints) off the server's event loop."""

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await IOLoop.current().run_in_executor(None, fn, *args)

    def answer(self, payload: Dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def fail(self, exc: Exception) -> None:
        if isinstance(exc, DeploymentNotFound):
            status, code = 404, "not_found"
        elif isinstance(exc, UserInputError):
            status, code = 400, "bad_request"
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


class TargetsHandler(NimbusHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            classes = (await self.call(catalog)).classes
        except Exception as exc:
            return self.fail(exc)
        self.answer({"targets": [TargetInfo.of(name, cls).to_json() for name, cls in classes.items()],
                     "default": DEFAULT_TARGET})


class DeploymentsHandler(NimbusHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        try:
            deployments = await self.call(api.list_deployments)
        except Exception as exc:
            return self.fail(exc)
        self.answer({"deployments": [DeploymentInfo.of(d).to_json() for d in deployments],
                     "home": str(Registry().home)})


class DeploymentHandler(NimbusHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        try:
            deployment = await self.call(api.get_deployment, name)
        except Exception as exc:
            return self.fail(exc)
        self.answer(DeploymentInfo.of(deployment).to_json())

    @tornado.web.authenticated
    async def delete(self, name: str) -> None:
        try:
            done = await self.call(api.destroy, name)
        except Exception as exc:
            return self.fail(exc)
        self.answer({"name": name, "message": done})


class PredictHandler(NimbusHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        try:
            try:
                body = json.loads(self.request.body or b"null")
            except ValueError:
                raise UserInputError("the request body is not JSON", 'send {"texts": ["some text"]}')
            request = PredictRequest.parse(body)
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
    async def get(self, name: str) -> None:
        try:
            report = await self.call(api.status_report, name)
        except Exception as exc:
            return self.fail(exc)
        self.answer(StatusInfo.of(report).to_json())


def setup_handlers(web_app: Any) -> None:
    base = url_path_join(web_app.settings["base_url"], "nimbus", "api")
    web_app.add_handlers(".*$", [
        (url_path_join(base, "targets") + "/?", TargetsHandler),
        (url_path_join(base, "deployments") + "/?", DeploymentsHandler),
        (url_path_join(base, "deployments", NAME) + "/?", DeploymentHandler),
        (url_path_join(base, "deployments", NAME, "predict") + "/?", PredictHandler),
        (url_path_join(base, "deployments", NAME, "status") + "/?", StatusHandler),
    ])
