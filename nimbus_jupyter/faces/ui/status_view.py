"""The status of a deployment (a ``StatusReport``) as text for terminals and as an ipywidgets panel.

Render only: the report is computed by ``api.status_report``; nothing here probes or decides.
"""
from __future__ import annotations

import html
from typing import Any, List, Optional

from ...core.operate import StatusReport, WindowStats

_HEALTH_COLOR = {"ok": "var(--jp-success-color1, green)", "down": "var(--jp-error-color1, #c00)"}


def _ms(value: Optional[float]) -> str:
    return "—" if value is None else (f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms")


def window_cells(w: Optional[WindowStats]) -> List[str]:
    """requests, errors, 4xx, throttled, p50, p99, cold starts: the columns of a window's row."""
    if w is None:
        return ["—"] * 7
    return [f"{w.requests:,}", f"{w.errors:,}" + (f" ({w.error_rate:.1%})" if w.errors else ""), f"{w.client_errors:,}",
            f"{w.throttled:,}", _ms(w.p50_ms), _ms(w.p99_ms), "n/a" if w.cold_starts is None else f"{w.cold_starts:,}"]


HEADERS = ["window", "requests", "errors (5xx)", "4xx", "throttled", "p50", "p99", "cold starts"]


def cost_text(report: StatusReport) -> str:
    if report.cost_this_month_usd is None:
        return f"n/a ({report.cost_detail})" if report.cost_detail else "n/a"
    return f"${report.cost_this_month_usd:,.2f} this month" + (f" ({report.cost_detail})" if report.cost_detail else "")


def status_text(report: StatusReport) -> str:
    took = f" in {_ms(report.health_ms)}" if report.health_ms is not None else ""
    lines = [f"{report.name}: {report.health}{took} on {report.target}, v{report.version}, {report.url}"]
    if report.health_detail:
        lines.append(f"  {report.health_detail}")
    rows = [HEADERS] + [[label] + window_cells(w) for label, w in (("last hour", report.last_hour), ("last day", report.last_day))]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines += ["  " + "  ".join(cell.rjust(widths[i]) if i else cell.ljust(widths[i]) for i, cell in enumerate(r)) for r in rows]
    if report.metrics_detail:
        lines.append(f"  {report.metrics_detail}")
    lines.append(f"  cost: {cost_text(report)}")
    lines.append(f"  checked {report.checked_at}")
    return "\n".join(lines)


def status_html(report: StatusReport) -> str:
    color = _HEALTH_COLOR.get(report.health, "inherit")
    took = f" ({_ms(report.health_ms)})" if report.health_ms is not None else ""
    head = (f"<div><b>{html.escape(report.name)}</b> <span style='color:{color}'>● {html.escape(report.health)}{took}</span>"
            f" · {html.escape(report.target)} · v{report.version} · <code>{html.escape(report.url)}</code></div>")
    if report.health_detail:
        head += f"<div style='color:{_HEALTH_COLOR['down']}'>{html.escape(report.health_detail)}</div>"
    th = "".join(f"<th style='text-align:{'left' if i == 0 else 'right'}'>{html.escape(h)}</th>" for i, h in enumerate(HEADERS))
    body = "".join(
        "<tr>" + f"<td style='text-align:left'>{label}</td>"
        + "".join(f"<td style='text-align:right'>{html.escape(c)}</td>" for c in window_cells(w)) + "</tr>"
        for label, w in (("last hour", report.last_hour), ("last day", report.last_day)))
    foot = ""
    if report.metrics_detail:
        foot += f"<div>{html.escape(report.metrics_detail)}</div>"
    foot += f"<div>cost: {html.escape(cost_text(report))}</div><div style='opacity:.7'>checked {html.escape(report.checked_at)}</div>"
    return f"{head}<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>{foot}"


class StatusWidget:
    """An ipywidgets panel of one report; ``update`` re-renders it with a newer report."""

    def __init__(self, report: StatusReport) -> None:
        import ipywidgets as w

        self.html = w.HTML(status_html(report))
        self.widget = w.VBox([self.html])

    def update(self, report: StatusReport) -> None:
        self.html.value = status_html(report)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def show_status(report: StatusReport, shell: Optional[Any] = None) -> None:
    """A widget in a notebook kernel, text elsewhere (terminal IPython, scripts, tests)."""
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
        try:
            from IPython.display import display

            display(StatusWidget(report))
            return
        except ImportError:
            pass
    print(status_text(report))
