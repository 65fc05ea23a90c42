"""The live view of a deploy: an ipywidgets panel where a kernel carries widgets, printed lines elsewhere.

Both receive the same progress events and end with the same ``DeployResult`` (or ``Plan``, or error);
the result renders itself (``api.results``). The widget adds only what is live: the stages as they
happen, then a title that says what happened, and the Reveal button of the API key.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Sequence

from ...api.results import StageTiming, stages_html
from ...core.display import ERROR_COLOR, MUTED, OK_COLOR, WARN_COLOR, esc
from ...core.errors import NimbusError
from ...core.progress import DONE, FAILED, PENDING, RUNNING, SKIPPED, MessageEvent, ProgressEvent, StageEvent
from .live import can_show_widgets, widget_bundle

_ICONS = {PENDING: "○", RUNNING: "◐", DONE: "✔", FAILED: "✖", SKIPPED: "–"}


class TextDeployView:
    """One line per finished stage as it finishes, then the result: for terminals and scripts."""

    def __init__(self, name: str, target: str, stages: Sequence[str], out: Any = None) -> None:
        self.out = out or sys.stdout
        self.name, self.target = name, target
        print(f"Deploying {name!r} to {target}", file=self.out, flush=True)

    def __call__(self, event: Any) -> None:
        if isinstance(event, StageEvent) and event.state != RUNNING:
            took = f"{event.seconds:6.2f} s" if event.seconds is not None else " " * 8
            print(f"  {_ICONS[event.state]} {event.stage:<11} {took}  {event.detail}", file=self.out, flush=True)
        elif isinstance(event, MessageEvent):
            print(f"  {event.text}", file=self.out, flush=True)

    def finish(self, result: Any) -> None:
        print(result.text(stages=False), file=self.out, flush=True)  # the stages were printed as they ended

    def fail(self, error: BaseException) -> None:
        print(f"  deploy of {self.name!r} to {self.target} failed: {error}", file=self.out, flush=True)

    def show_plan(self, plan: Any) -> None:
        print(plan.text(), file=self.out, flush=True)


class WidgetDeployView:
    """Stages with state and duration and a progress bar while it runs; then a title that says what
    happened, the endpoint, the masked key with Reveal, the samples and the parity check."""

    def __init__(self, name: str, target: str, stages: Sequence[str]) -> None:
        import ipywidgets as w
        from IPython.display import display

        self._w = w
        self.name, self.target = name, target
        self.states: Dict[str, Dict[str, Any]] = {s: {"state": PENDING, "detail": "", "seconds": None} for s in stages}
        self.messages: List[str] = []
        self.title = w.HTML(self._title("◐", f"deploying <code>{esc(name)}</code> to <b>{esc(target)}</b>…"))
        self.table = w.HTML()
        self.bar = w.FloatProgress(value=0, min=0, max=max(1, len(stages)), bar_style="info",
                                   layout=w.Layout(width="60%"))
        self.result = w.VBox()
        self.box = w.VBox([self.title, self.bar, self.table, self.result])
        self._render_stages()
        self.handle = display(widget_bundle(self.box, f"Deploying {name!r} to {target}..."), raw=True,
                              display_id=True)

    @staticmethod
    def _title(icon: str, what: str, color: str = "inherit") -> str:
        return f"<div><span style='color:{color}'>{icon}</span> <b>Nimbus</b>: {what}</div>"

    def _update(self, text: str, html: str = "") -> None:
        """Refresh the text (and HTML) twin of the widget, which nbconvert and saved notebooks show."""
        if self.handle is not None:
            self.handle.update(widget_bundle(self.box, text, html), raw=True)

    def __call__(self, event: Any) -> None:
        if isinstance(event, StageEvent) and event.stage in self.states:
            self.states[event.stage] = {"state": event.state, "detail": event.detail, "seconds": event.seconds}
            self.bar.value = sum(1 for s in self.states.values() if s["state"] in (DONE, SKIPPED))
            if event.state == FAILED:
                self.bar.bar_style = "danger"
        elif isinstance(event, ProgressEvent) and event.stage in self.states:
            self.states[event.stage]["detail"] = f"{event.done}/{event.total} {event.detail}"
        elif isinstance(event, MessageEvent):
            self.messages.append(event.text)
        self._render_stages()

    def _render_stages(self) -> None:
        timings = [StageTiming(stage, info["state"], info["seconds"], info["detail"]) for stage, info in self.states.items()]
        self.table.value = stages_html(timings, self.messages)

    def finish(self, result: Any) -> None:
        w = self._w
        d = result.deployment
        self.bar.value = self.bar.max
        parity_ok = result.parity is None or result.parity.ok
        self.bar.bar_style = "success" if parity_ok else "warning"
        self.title.value = self._title("✔" if parity_ok else "⚠", esc(result.what_happened()),
                                       OK_COLOR if parity_ok else WARN_COLOR)
        key = w.Text(value=d.masked_key, disabled=True, layout=w.Layout(width="32em"))
        reveal = w.ToggleButton(description="Reveal", tooltip="show the key to select and copy it; hide it again after")
        problem = w.HTML("")

        def toggle(change: Dict[str, Any]) -> None:
            # The key enters widget state only while revealed, so hidden keys are not saved in the notebook.
            if not change["new"]:
                key.value, key.disabled, reveal.description = d.masked_key, True, "Reveal"
                return
            try:
                key.value = d.api_key
            except NimbusError as exc:  # destroyed since: say so here, not in the log console
                key.value, reveal.disabled, reveal.description = "", True, "Reveal"
                problem.value = (f"<div style='color:{ERROR_COLOR};overflow-wrap:anywhere'>{esc(exc.what)}</div>"
                                 f"<div style='{MUTED}'>{esc(exc.todo)}</div>")
                return
            key.disabled, reveal.description = False, "Hide"

        reveal.observe(toggle, names="value")
        self.result.children = [w.HTML(result.endpoint_html()), w.HBox([w.HTML("API key:&nbsp;"), key, reveal]),
                                problem, w.HTML(result.samples_block_html())]
        self.reveal, self.key, self.problem = reveal, key, problem
        self._update(result.text(), result.html())

    def fail(self, error: BaseException) -> None:
        self.bar.bar_style = "danger"
        self.title.value = self._title("✖", f"deploy of <code>{esc(self.name)}</code> to <b>{esc(self.target)}</b> failed",
                                       ERROR_COLOR)
        self.result.children = [self._w.HTML(f"<pre style='color:{ERROR_COLOR};white-space:pre-wrap'>{esc(error)}</pre>")]
        self._update(f"Deploy of {self.name!r} to {self.target} failed: {error}")

    def show_plan(self, plan: Any) -> None:
        self.title.value = self._title("–", f"plan for <code>{esc(self.name)}</code> on <b>{esc(self.target)}</b> "
                                            "(dry run: nothing was changed)")
        self.result.children = [self._w.HTML(plan.html())]
        self._update(plan.text(), plan.html())


def make_view(name: str, target: str, stages: Sequence[str], shell: Optional[Any] = None,
              widgets: bool = True) -> Any:
    """The widget view where a kernel carries widgets (and ``widgets``), the text view otherwise."""
    if widgets and can_show_widgets(shell):
        return WidgetDeployView(name, target, stages)
    return TextDeployView(name, target, stages)
