"""On a real AWS account (marked `aws`; skipped without credentials): deploy, the key is enforced,
batch both ways, logs, destroy. Everything here is what moto cannot run: Lambda executing the handler
on the layer, API Gateway's key check and usage plan."""
from __future__ import annotations

import uuid

import pytest
import requests

pytestmark = [pytest.mark.aws, pytest.mark.timeout(2400)]


def test_deploy_batch_logs_destroy_on_a_real_account(real_aws, nimbus_home, textcat_nlp) -> None:
    from nimbus_jupyter import api
    from nimbus_jupyter.api.batching import batch
    from nimbus_jupyter.api.logs import recent_logs

    name = f"nimbus-test-{uuid.uuid4().hex[:6]}"
    texts = ["great phone, works well", "arrived broken, avoid", "the Zento kettle is fine"]
    deployment = api.deploy(textcat_nlp, name, target="aws", samples=texts, memory=1024)
    try:
        assert deployment.ready and deployment.url.startswith("https://")
        assert deployment.parity is not None and deployment.parity.ok
        assert requests.post(f"{deployment.url}/predict", json={"texts": texts}, timeout=30).status_code == 403
        by_invoke = batch(texts * 20, name)
        by_http = batch(texts * 20, name, via="http", resume=False)
        assert (by_invoke.error == "").all() and (by_http.error == "").all()
        assert by_invoke.label.tolist() == by_http.label.tolist()
        expected = [max(doc.cats, key=doc.cats.get) for doc in textcat_nlp.pipe(texts * 20)]
        assert by_invoke.label.tolist() == expected
        lines = recent_logs(name, since="30m", limit=500)
        assert any("REPORT RequestId" in line.message for line in lines)
    finally:
        said = api.destroy(name)
    assert "deleted the stack" in said
