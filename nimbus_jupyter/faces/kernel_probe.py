"""What the sidebar runs inside a kernel, by a (silent) execute.

``publish_pipelines()`` finds the spaCy pipelines in the user namespace and publishes them as a vendor
mime bundle, which the sidebar reads from the execute's IOPub messages (display data arrives even for a
silent execute). ``deploy_from_sidebar()`` runs the very deploy the magic runs (``nimbus_jupyter.api.deploy``), and
publishes each progress event the same way, so the panel can show the stages live.

Both take care not to leave names in the user's namespace and not to import spaCy when the user has not.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional

from .sidebar_models import PIPELINES_MIME, PROGRESS_MIME, DeploymentInfo, PipelineInfo, ProgressMessage


def _shell() -> Any:
    from IPython import get_ipython

    return get_ipython()


def _user_namespace(shell: Any = None) -> Dict[str, Any]:
    if shell is None:
        shell = _shell()
    return shell.user_ns if shell is not None else {}


def _size_bytes(nlp: Any) -> int:
    """Bytes of weights and vectors in memory: cheap (no serialization), close to the bundle's size."""
    from thinc.api import Model  # spaCy is imported already: a pipeline exists

    total = 0
    try:
        total += int(getattr(nlp.vocab.vectors.data, "nbytes", 0))
    except Exception:
        pass
    for _, component in getattr(nlp, "pipeline", []):
        model = getattr(component, "model", None)
        if not isinstance(model, Model):
            continue
        try:
            for node in model.walk():
                for param in node.param_names:
                    if node.has_param(param):
                        total += int(node.get_param(param).nbytes)
        except Exception:
            continue
    return total


def find_pipelines(namespace: Dict[str, Any]) -> List[PipelineInfo]:
    if "spacy" not in sys.modules:  # no pipeline can exist, and importing spaCy would cost seconds
        return []
    from spacy.language import Language

    found = []
    for variable, value in list(namespace.items()):
        if variable.startswith("_") or not isinstance(value, Language):
            continue
        found.append(PipelineInfo(variable=variable, lang=value.lang, components=list(value.pipe_names),
                                  size_bytes=_size_bytes(value)))
    return sorted(found, key=lambda p: p.variable)


def publish_pipelines(shell: Any = None) -> List[PipelineInfo]:
    from IPython.display import publish_display_data

    pipelines = find_pipelines(_user_namespace(shell))
    summary = ", ".join(p.variable for p in pipelines) or "no spaCy pipelines"
    publish_display_data({PIPELINES_MIME: {"pipelines": [p.to_json() for p in pipelines]}, "text/plain": summary})
    return pipelines


def _publish_progress(message: ProgressMessage) -> None:
    from IPython.display import publish_display_data

    publish_display_data({PROGRESS_MIME: message.to_json(), "text/plain": f"nimbus {message.kind} {message.name}"})


def progress_message(name: str, event: Any) -> Optional[ProgressMessage]:
    """A deploy's progress event as the message the sidebar reads."""
    from ..core.progress import MessageEvent, ProgressEvent, StageEvent

    if isinstance(event, StageEvent):
        return ProgressMessage("stage", name, stage=event.stage, state=event.state, detail=event.detail,
                               seconds=event.seconds)
    if isinstance(event, ProgressEvent):
        return ProgressMessage("progress", name, stage=event.stage, done=event.done, total=event.total,
                               detail=event.detail)
    if isinstance(event, MessageEvent):
        return ProgressMessage("message", name, text=event.text)
    return None


def deploy_from_sidebar(variable: str, name: str, target: str = "local", shell: Any = None,
                        options: Optional[Dict[str, Any]] = None) -> None:
    """Deploy the pipeline in ``variable`` as ``name`` on ``target``: ``nimbus_jupyter.api.deploy``, the
    magic's own code path. ``options`` are the target's, by their names (``GET /nimbus/api/targets``
    lists them), e.g. ``{"workers": 2}``.

    Errors are published as an ``error`` message with the readable text (and not raised, so a silent
    execute leaves no traceback behind); the registry is the record of what happened.
    """
    from .. import api
    from ..api.origin import notebook_origin
    from ..core.errors import UserInputError
    from ..targets.registry import stages_of

    namespace = _user_namespace(shell)
    try:
        if variable not in namespace:
            raise UserInputError(f"there is no variable {variable!r} in this kernel any more",
                                 "refresh the panel; re-run the cell that builds the pipeline")
        if options is not None and not isinstance(options, dict):
            raise UserInputError(f"options must be a dict of the target's options, not {type(options).__name__}",
                                 'e.g. {"workers": 2}')
        _publish_progress(ProgressMessage("start", name, stages=list(stages_of(target))))

        def listener(event: Any) -> None:
            message = progress_message(name, event)
            if message is not None:
                _publish_progress(message)

        # the variable and this kernel's notebook: the same pipeline with components added is a new version
        origin = notebook_origin(variable, shell if shell is not None else _shell())
        deployment = api.deploy(namespace[variable], name, target, listeners=[listener], namespace=namespace,
                                origin=origin, **(options or {}))
        done = ProgressMessage("done", name, deployment=DeploymentInfo.of(deployment).to_json())
        if deployment.unchanged:
            done.text = "unchanged: the endpoint already serves this pipeline"
        elif deployment.parity is not None:
            done.text = deployment.parity.summary()
        result = deployment.result
        if result is not None and result.generic_samples:
            done.text = f"{done.text}; {result.samples_note}" if done.text else result.samples_note
        _publish_progress(done)
    except Exception as exc:  # noqa: BLE001 - every failure is shown in the panel as its message
        _publish_progress(ProgressMessage("error", name, text=str(exc) or type(exc).__name__))
