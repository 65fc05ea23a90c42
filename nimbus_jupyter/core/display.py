"""Objects that display themselves, through IPython's rich display protocol.

A result (a plan, a deploy, a status, a rollback, a batch summary, a job) subclasses ``Displayable`` and
writes two renderings of itself: ``text()`` (terminals, scripts, ``nbconvert --to script``, saved
notebooks read as text) and ``html()`` (notebooks). IPython asks ``_repr_mimebundle_`` for both and the
frontend picks; nothing here asks which shell it runs in. Widgets are not here: only what is live
(progress, Reveal, Refresh) is a widget, and the faces add those.

The helpers (``html_table``, ``text_table``, ``esc``) keep every table alike: left-aligned text, right-
aligned numbers, padded cells (notebook themes give ``<td>`` none of their own in widget output).
"""
from __future__ import annotations

import html as _html
from typing import Any, Dict, Optional, Sequence

CELL_STYLE = "padding:2px 10px"  # widget HTML and some themes have no cell padding of their own
OK_COLOR = "var(--jp-success-color1, #2e7d32)"
WARN_COLOR = "var(--jp-warn-color1, #e65100)"
ERROR_COLOR = "var(--jp-error-color1, #c62828)"
MUTED = "opacity:.7"


def esc(value: Any) -> str:
    return _html.escape(str(value), quote=True)


class Displayable:
    """A value that shows itself: ``text()`` everywhere, ``html()`` where HTML renders.

    ``str()`` is the text form; ``__repr__`` is left to the subclass (a dataclass's, or a short line) so
    that debuggers and logs get something compact. IPython's pretty printer (nested in lists, the
    terminal's ``Out[n]``) uses the text form too.
    """

    def text(self) -> str:
        raise NotImplementedError

    def html(self) -> str:
        return f"<pre>{esc(self.text())}</pre>"

    def __str__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text() if not cycle else f"{type(self).__name__}(...)")


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Optional[Sequence[int]] = None,
               raw: Optional[Sequence[int]] = None) -> str:
    """A padded HTML table; columns in ``numeric`` are right-aligned, cells in ``raw`` columns are HTML already."""
    numeric, raw = set(numeric or ()), set(raw or ())

    def cell(tag: str, i: int, value: Any) -> str:
        align = "right" if i in numeric else "left"
        body = str(value) if i in raw and tag == "td" else esc(value)
        return f"<{tag} style='text-align:{align};{CELL_STYLE}'>{body}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers)) if headers else ""
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return (f"<table style='border-collapse:collapse'>" + (f"<thead><tr>{head}</tr></thead>" if head else "")
            + f"<tbody>{body}</tbody></table>")


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Optional[Sequence[int]] = None,
               indent: str = "  ") -> str:
    """Aligned plain-text columns (numbers right-aligned), one line per row, the header first if any."""
    numeric = set(numeric or ())
    table = ([list(map(str, headers))] if headers else []) + [[str(v) for v in row] for row in rows]
    if not table:
        return ""
    widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(max(len(r) for r in table))]
    lines = []
    for row in table:
        cells = [(c.rjust(widths[i]) if i in numeric else c.ljust(widths[i])) for i, c in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def seconds_text(seconds: Optional[float]) -> str:
    """0.004 -> '0.00 s', 2.345 -> '2.35 s', 75 -> '1 min 15 s'; '' for None."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s"
