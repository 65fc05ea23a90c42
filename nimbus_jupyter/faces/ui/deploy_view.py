"""The deploy status view: a live ipywidgets panel in a notebook, plain text everywhere else.

Both receive the same progress events and the same final ``DeployResult``; neither decides anything.
"""
from __future__ import annotations

import html
from typing import Any, Dict, List, Optional, Sequence

from ...core.progress import DONE, FAILED, PENDING, RUNNING, SKIPPED, MessageEvent, ProgressEvent, StageEvent
from .render import parity_html, samples_html, samples_text

_ICONS = {PENDING: "○", RUNNING: "◐", DONE: "✔", FAILED: "✖", SKIPPED: "–"}


def result_text(result: Any) -> str:
    d = result.deployment
    lines = [
        f"{d.name}: {'unchanged, ' if result.unchanged else ''}ready on {d.target}, version {d.version}",
        f"  endpoint: {d.url}",
        f"  api key:  {d.masked_key}  (full key: the deployment's .api_key)",
        f"  samples ({', '.join(result.fields)}):",
        samples_text(result.samples, result.results),
    ]
    if result.parity is not None:
        lines.append(result.parity.summary())
    return "\n".join(lines)


class TextDeployView:
    """Prints one line per finished stage, then the result: for terminals and scripts."""

    def __init__(self, name: str, target: str, stages: Sequence[str], out: Any = None) -> None:
        import sys

        self.out = out or sys.stdout
        print(f"Deploying {name!r} to {target}", file=self.out, flush=True)

    def __call__(self, event: Any) -> None:
        if isinstance(event, StageEvent) and event.state != RUNNING:
            took = f"{event.seconds:6.2f} s" if event.seconds is not None else " " * 8
            print(f"  {_ICONS[event.state]} {event.stage:<11} {took}  {event.detail}", file=self.out, flush=True)
        elif isinstance(event, MessageEvent):
            print(f"  {event.text}", file=self.out, flush=True)

    def finish(self, result: Any) -> None:
        print(result_text(result), file=self.out, flush=True)

    def fail(self, error: BaseException) -> None:
        print(f"  deploy failed: {error}", file=self.out, flush=True)

    def show_plan(self, plan: Any) -> None:
        print(plan.text(), file=self.out, flush=True)


class WidgetDeployView:
    """Stages with state and duration, a progress bar, then URL, masked key, samples and parity."""

    def __init__(self, name: str, target: str, stages: Sequence[str]) -> None:
        import ipywidgets as w
        from IPython.display import display

        self._w = w
        self.name = name
        self.states: Dict[str, Dict[str, Any]] = {s: {"state": PENDING, "detail": "", "seconds": None} for s in stages}
        self.messages: List[str] = []
        self.title = w.HTML(f"<b>Nimbus</b>: deploying <code>{html.escape(name)}</code> to <b>{html.escape(target)}</b>")
        self.table = w.HTML()
        self.bar = w.FloatProgress(value=0, min=0, max=len(stages), bar_style="info", layout=w.Layout(width="60%"))
        self.result = w.VBox()
        self.box = w.VBox([self.title, self.bar, self.table, self.result])
        self._render_stages()
        self.handle = display(self._bundle(f"Deploying {name!r} to {target}..."), raw=True, display_id=True)

    def _update(self, text: str) -> None:
        """Refresh the plain-text twin of the widget, which nbconvert and saved notebooks show."""
        if self.handle is not None:
            self.handle.update(self._bundle(text), raw=True)

    def _bundle(self, text: str) -> Dict[str, Any]:
        return {
            "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0, "model_id": self.box.model_id},
            "text/plain": text,
        }

    def __call__(self, event: Any) -> None:
        if isinstance(event, StageEvent) and event.stage in self.states:
            self.states[event.stage] = {"state": event.state, "detail": event.detail, "seconds": event.seconds}
            finished = sum(1 for s in self.states.values() if s["state"] in (DONE, SKIPPED))
            self.bar.value = finished
            if event.state == FAILED:
                self.bar.bar_style = "danger"
        elif isinstance(event, ProgressEvent) and event.stage in self.states:
            self.states[event.stage]["detail"] = f"{event.done}/{event.total} {event.detail}"
        elif isinstance(event, MessageEvent):
            self.messages.append(event.text)
        self._render_stages()

    def _render_stages(self) -> None:
        rows = []
        for stage, info in self.states.items():
            took = f"{info['seconds']:.2f} s" if info["seconds"] is not None else ""
            rows.append(f"<tr><td>{_ICONS[info['state']]}</td><td style='text-align:left'>{stage}</td>"
                        f"<td style='text-align:right'>{took}</td><td style='text-align:left'>{html.escape(info['detail'])}</td></tr>")
        notes = "".join(f"<div>{html.escape(m)}</div>" for m in self.messages)
        self.table.value = f"<table>{''.join(rows)}</table>{notes}"

    def finish(self, result: Any) -> None:
        w = self._w
        d = result.deployment
        self.bar.value = self.bar.max
        self.bar.bar_style = "success" if result.parity is None or result.parity.ok else "warning"
        url = w.HTML(f"Endpoint: <a href='{html.escape(d.url)}/openapi.json' target='_blank'><code>{html.escape(d.url)}</code></a> "
                     f"(version {d.version}{', unchanged' if result.unchanged else ''})")
        key = w.Text(value=d.masked_key, disabled=True, layout=w.Layout(width="32em"))
        reveal = w.ToggleButton(description="Reveal", tooltip="show the key to select and copy it; hide it again after")

        def toggle(change: Dict[str, Any]) -> None:
            # The key enters widget state only while revealed, so hidden keys are not saved in the notebook.
            key.value = d.api_key if change["new"] else d.masked_key
            key.disabled = not change["new"]
            reveal.description = "Hide" if change["new"] else "Reveal"

        reveal.observe(toggle, names="value")
        samples = w.HTML(samples_html(result.samples, result.results))
        children = [url, w.HBox([w.HTML("API key:&nbsp;"), key, reveal]), samples]
        if result.parity is not None:
            children.append(w.HTML(parity_html(result.parity)))
        self.result.children = children
        self._update(result_text(result))

    def fail(self, error: BaseException) -> None:
        self.bar.bar_style = "danger"
        self.result.children = [self._w.HTML(f"<pre style='color:var(--jp-error-color1, #c00)'>{html.escape(str(error))}</pre>")]
        self._update(f"Deploy of {self.name!r} failed: {error}")

    def show_plan(self, plan: Any) -> None:
        self.result.children = [self._w.HTML(f"<pre>{html.escape(plan.text())}</pre>")]
        self._update(plan.text())


def make_view(name: str, target: str, stages: Sequence[str], shell: Optional[Any] = None) -> Any:
    """A widget view in a kernel with ipywidgets, a text view otherwise (terminal IPython, scripts)."""
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
        try:
            return WidgetDeployView(name, target, stages)
        except ImportError:
            pass
    return TextDeployView(name, target, stages)
