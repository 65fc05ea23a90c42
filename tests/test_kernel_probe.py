"""The kernel side of the sidebar, in a real kernel: a silent execute publishes the pipelines as a vendor
mime bundle on IOPub, and a deploy started from the sidebar publishes its stages and lands in the registry."""
from __future__ import annotations


import pytest
from jupyter_client.manager import start_new_kernel

from nimbus_jupyter.faces.kernel_probe import find_pipelines, progress_message
from nimbus_jupyter.core.progress import StageEvent
from nimbus_jupyter.core.registry import Registry
from nimbus_jupyter.faces.sidebar_models import PIPELINES_MIME, PROGRESS_MIME

PROBE = "__import__('nimbus_jupyter.faces.kernel_probe', fromlist=['_']).publish_pipelines()"


@pytest.fixture(scope="module")
def kernel(nimbus_home):
    km, kc = start_new_kernel(kernel_name="python3")  # inherits NIMBUS_HOME: the same registry
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(kc, code, silent=True, timeout=120):
    """Run ``code``; return (reply content, [display data bundles]) as the sidebar sees them."""
    msg_id = kc.execute(code, silent=silent, store_history=False)
    bundles = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "display_data":
            bundles.append(msg["content"]["data"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=timeout)
    return reply["content"], bundles


def test_no_spacy_means_no_pipelines_and_no_spacy_import(kernel):
    reply, bundles = execute(kernel, PROBE)
    assert reply["status"] == "ok" and bundles[-1][PIPELINES_MIME] == {"pipelines": []}
    reply, _ = execute(kernel, "assert 'spacy' not in __import__('sys').modules", silent=False)
    assert reply["status"] == "ok"


def test_a_silent_probe_lists_pipelines_and_leaves_no_names(kernel):
    reply, _ = execute(kernel, "import spacy\nnlp = spacy.blank('en')\nnlp.add_pipe('sentencizer')\n"
                               "_hidden = nlp\nnot_a_pipeline = [1]", silent=False)
    assert reply["status"] == "ok"
    reply, bundles = execute(kernel, PROBE)
    assert reply["status"] == "ok"
    [bundle] = [b for b in bundles if PIPELINES_MIME in b]
    assert bundle[PIPELINES_MIME]["pipelines"] == [
        {"variable": "nlp", "lang": "en", "components": ["sentencizer"], "size_bytes": 0}]
    reply, _ = execute(kernel, "assert '_nimbus_probe' not in dir() and 'kernel_probe' not in dir()", silent=False)
    assert reply["status"] == "ok"


def test_a_sidebar_deploy_publishes_stages_and_lands_in_the_registry(kernel, nimbus_home):
    code = ("__import__('nimbus_jupyter.faces.kernel_probe', fromlist=['_'])"
            ".deploy_from_sidebar('nlp', 'from-panel', 'local', options={'workers': 1})")
    reply, bundles = execute(kernel, code)
    assert reply["status"] == "ok"
    messages = [b[PROGRESS_MIME] for b in bundles if PROGRESS_MIME in b]
    kinds = [m["kind"] for m in messages]
    assert kinds[0] == "start" and kinds[-1] == "done", messages
    assert messages[0]["stages"] == ["serialize", "package", "start", "smoke test"]
    done_stages = [m["stage"] for m in messages if m["kind"] == "stage" and m["state"] == "done"]
    assert done_stages == ["serialize", "package", "start", "smoke test"]
    deployment = messages[-1]["deployment"]
    assert deployment["status"] == "ready" and deployment["url"].startswith("http://127.0.0.1:")
    record = Registry(nimbus_home).get("from-panel")
    assert record.url == deployment["url"] and record.options["workers"] == deployment["workers"] == 1
    assert (record.origin["kind"], record.origin["variable"]) == ("notebook", "nlp") and record.origin["kernel"]
    assert "the samples are generic" in messages[-1]["text"]  # no texts seen in this kernel: said so in the panel


def test_sidebar_deploy_errors_are_readable_messages(kernel):
    for args, expected in [("'nlp', 'Bad Name'", "not a valid deployment name"),
                           ("'gone', 'x'", "no variable 'gone'"),
                           ("'not_a_pipeline', 'x'", "not a spaCy pipeline"),
                           ("'nlp', 'x', 'local', options={'colour': 1}", "unknown option(s) for the local target: colour"),
                           ("'nlp', 'x', 'local', options={'memory': 512}", "memory: option(s) of the aws target, not of local"),
                           ("'nlp', 'x', 'mars'", "unknown target 'mars'")]:
        code = f"__import__('nimbus_jupyter.faces.kernel_probe', fromlist=['_']).deploy_from_sidebar({args})"
        reply, bundles = execute(kernel, code)
        assert reply["status"] == "ok"
        last = [b[PROGRESS_MIME] for b in bundles if PROGRESS_MIME in b][-1]
        assert last["kind"] == "error" and expected in last["text"], last


def test_find_pipelines_counts_weights(textcat_nlp):
    [info] = find_pipelines({"nlp": textcat_nlp, "other": 3})
    assert info.variable == "nlp" and info.components == textcat_nlp.pipe_names and info.size_bytes > 0


def test_progress_message_of_a_stage_event():
    m = progress_message("n", StageEvent("package", "done", "1 MB", 0.5))
    assert (m.kind, m.stage, m.state, m.detail, m.seconds) == ("stage", "package", "done", "1 MB", 0.5)
