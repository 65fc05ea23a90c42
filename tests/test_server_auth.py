"""The sidebar's routes ask Jupyter's Authorizer: under a read-only one, reads work and destroy and predict
are refused with 403, and a refused destroy leaves the deployment running."""
from __future__ import annotations

import json

import pytest
from jupyter_server.auth import Authorizer
from tornado.httpclient import HTTPClientError

import nimbus_jupyter as nj
from nimbus_jupyter.faces.server_extension.handlers import AUTH_RESOURCE, HANDLERS

pytest_plugins = ["pytest_jupyter.jupyter_server"]


class ReadOnly(Authorizer):
    """Allows reading anything and nothing else; remembers what it was asked."""

    asked: list = []

    def is_authorized(self, handler, user, action, resource) -> bool:
        ReadOnly.asked.append((action, resource))
        return action == "read"


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"nimbus_jupyter": True}, "authorizer_class": ReadOnly}}


@pytest.fixture(scope="module")
def decoy(nimbus_home, textcat_nlp):
    d = nj.deploy(textcat_nlp, "decoy", workers=1, samples=["fine"], show=False)
    yield d
    nj.destroy("decoy")


async def refused(jp_fetch, *parts, **kwargs):
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("nimbus", "api", *parts, **kwargs)
    return info.value.code, json.loads(info.value.response.body)


def test_every_route_declares_its_resource():
    for _path, handler in HANDLERS:
        assert handler.auth_resource == AUTH_RESOURCE == "nimbus"


async def test_reads_are_allowed(jp_fetch, decoy):
    ReadOnly.asked.clear()
    for parts in (("targets",), ("deployments",), ("deployments", "decoy"), ("deployments", "decoy", "status")):
        response = await jp_fetch("nimbus", "api", *parts)
        assert response.code == 200, parts
    assert set(ReadOnly.asked) == {("read", "nimbus")}


async def test_destroy_is_refused_and_the_deployment_stays(jp_fetch, decoy):
    code, body = await refused(jp_fetch, "deployments", "decoy", method="DELETE")
    assert code == 403 and body["error"] == "forbidden" and "write on resource: nimbus" in body["message"]
    assert body["todo"]
    assert ("write", "nimbus") in ReadOnly.asked
    assert nj.get_deployment("decoy").status == "ready" and decoy.predict(["still here"])


async def test_predict_is_refused(jp_fetch, decoy):
    code, body = await refused(jp_fetch, "deployments", "decoy", "predict", method="POST",
                               body=json.dumps({"texts": ["hello"]}))
    assert code == 403 and body["error"] == "forbidden" and "execute on resource: nimbus" in body["message"]
