"""``nimbus_jupyter.deploy``: the api's deploy with a live view of it (a widget where a kernel carries
widgets, text elsewhere), the notebook's namespace for the components defined in its cells, and where the
pipeline comes from (the notebook variable holding it: ``api.origin``)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

from ..api.deployment import Deployment
from ..api.orchestration import check_name, deployment_of, run_deploy
from ..api.origin import Origin, notebook_origin, variable_of
from ..core.bundle import require_pipeline
from ..core.plan import Plan
from ..core.progress import Listener
from ..core.registry import Registry
from ..targets.registry import stages_of
from .ui.deploy_view import make_view


def deploy(
    nlp: Any,
    name: str,
    target: str = "local",
    *,
    samples: Optional[Sequence[str]] = None,
    dry_run: bool = False,
    force: bool = False,
    show: bool = True,
    namespace: Optional[Dict[str, Any]] = None,
    listeners: Sequence[Listener] = (),
    shell: Any = None,
    registry: Optional[Registry] = None,
    origin: Optional[Origin] = None,
    widgets: bool = True,
    **target_options: Any,
) -> Union[Deployment, Plan]:
    """Deploy ``nlp`` as ``name`` and return the ``Deployment`` (or, with ``dry_run``, the ``Plan``).

    With ``show`` the progress and the result are displayed: a widget in a notebook, text elsewhere.
    The returned deployment also carries ``unchanged``, ``samples``, ``sample_results``, ``parity`` and
    ``plan``. ``target_options`` go to the target (``workers`` on local; ``region``, ``profile``,
    ``memory``, ``arch``, ``timeout``, ``reserved_concurrency``, ``throttle_rate``, ``throttle_burst``,
    ``quota``, ``log_retention_days``, ``alarm_email`` on aws; ``%nimbus_deploy?`` lists them all).

    ``origin`` defaults to the notebook variable that holds ``nlp`` (found by identity), so the same
    variable's pipeline with a component added or removed is a new version, not a stranger.
    ``widgets=False`` shows text even where a widget could be shown.
    """
    if shell is None:
        shell = _current_shell()
    require_pipeline(nlp, "the pipeline")
    check_name(name)
    if namespace is None and shell is not None:
        namespace = shell.user_ns
    if origin is None and shell is not None:
        variable = variable_of(nlp, shell.user_ns)
        origin = notebook_origin(variable, shell) if variable else None
    view = make_view(name, target, stages_of(target), shell, widgets) if show else None
    try:
        outcome = run_deploy(nlp, name, target, samples=samples, dry_run=dry_run, force=force, namespace=namespace,
                             listeners=[*listeners, *([view] if view else [])], registry=registry, origin=origin,
                             **target_options)
    except BaseException as exc:
        if view:
            view.fail(exc)
        raise
    if isinstance(outcome, Plan):
        if view:
            view.show_plan(outcome)
        return outcome
    if view:
        view.finish(outcome)
    return deployment_of(outcome)


def _current_shell() -> Any:
    try:
        from IPython import get_ipython

        return get_ipython()
    except ImportError:
        return None
