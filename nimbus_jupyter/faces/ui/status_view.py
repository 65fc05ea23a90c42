"""The live twin of a ``StatusReport``: its HTML with a Refresh button (ipywidgets), for notebooks.

The report renders itself (``StatusReport.text``/``html``); this only adds what is live: Refresh asks
``api.status_report`` again and shows the newer report, or what went wrong, in the panel itself.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from ...core.display import ERROR_COLOR, MUTED, esc
from ...core.operate import StatusReport
from .live import can_show_widgets, widget_bundle


class StatusPanel:
    def __init__(self, report: StatusReport, fetch: Optional[Callable[[str], StatusReport]] = None) -> None:
        import ipywidgets as w

        from ... import api

        self.report = report
        self.fetch = fetch or api.status_report
        self.html = w.HTML(report.html())
        self.refresh = w.Button(description="Refresh", icon="refresh", tooltip="probe the endpoint and read its metrics again",
                                layout=w.Layout(width="auto"))
        self.note = w.HTML("")
        self.refresh.on_click(lambda _button: self.update())
        self.box = w.VBox([self.html, w.HBox([self.refresh, self.note])])

    def update(self) -> None:
        self.refresh.disabled, self.refresh.description = True, "Refreshing…"
        try:
            self.report = self.fetch(self.report.name)
            self.html.value = self.report.html()
            self.note.value = ""
        except Exception as exc:  # shown in the panel: a callback's exception would go to the log console
            text = getattr(exc, "what", None) or f"{type(exc).__name__}: {exc}"
            todo = getattr(exc, "todo", "")
            self.note.value = (f"<span style='color:{ERROR_COLOR}'>{esc(text)}</span>"
                               + (f" <span style='{MUTED}'>{esc(todo)}</span>" if todo else ""))
        finally:
            self.refresh.disabled, self.refresh.description = False, "Refresh"


def status_bundle(report: StatusReport) -> Dict[str, Any]:
    panel = StatusPanel(report)
    return widget_bundle(panel.box, report.text(), report.html())


def install(shell: Any, enabled: Callable[[], bool] = lambda: True) -> None:
    """Where a kernel carries widgets, a ``StatusReport`` displays as this live panel (IPython's per-type
    formatter: the report itself stays a plain value that displays itself elsewhere). ``enabled`` is asked
    at each display (``%config NimbusMagics.widgets = False`` turns the panels off)."""
    if not can_show_widgets(shell):
        return

    def printer(report: StatusReport) -> Dict[str, Any]:
        return status_bundle(report) if enabled() else report._repr_mimebundle_()

    shell.display_formatter.mimebundle_formatter.for_type(StatusReport, printer)
