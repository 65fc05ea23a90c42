"""The parity check: the same texts through the kernel's pipeline and through the endpoint."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence

from ..core.display import ERROR_COLOR, OK_COLOR, Displayable, esc
from ..runtime.fields import doc_to_result

SCORE_TOLERANCE = 1e-5


@dataclass
class ParityReport(Displayable):
    """The same samples through the kernel and through the endpoint, and every difference."""

    texts: List[str]
    fields: List[str]
    kernel: List[Dict[str, Any]]
    endpoint: List[Dict[str, Any]]
    differences: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        if self.ok:
            return f"parity: OK, {len(self.texts)} sample(s) identical in the kernel and at the endpoint ({', '.join(self.fields)})"
        lines = [f"parity: {len(self.differences)} difference(s) between the kernel and the endpoint:"]
        return "\n".join(lines + [f"  - {d}" for d in self.differences])

    def text(self) -> str:
        return self.summary()

    def html(self) -> str:
        if self.ok:
            return f"<div style='color:{OK_COLOR}'>✔ {esc(self.summary())}</div>"
        items = "".join(f"<li><code style='overflow-wrap:anywhere'>{esc(d)}</code></li>" for d in self.differences)
        return (f"<div style='color:{ERROR_COLOR}'>✖ parity: {len(self.differences)} difference(s) "
                f"between the kernel and the endpoint</div><ul>{items}</ul>")


def check_parity(nlp: Any, texts: Sequence[str], endpoint_results: Sequence[Dict[str, Any]], fields: Sequence[str]) -> ParityReport:
    kernel = [doc_to_result(doc, fields) for doc in nlp.pipe(texts)]
    report = ParityReport(list(texts), list(fields), kernel, list(endpoint_results))
    if len(kernel) != len(endpoint_results):
        report.differences.append(f"the endpoint returned {len(endpoint_results)} results for {len(kernel)} texts")
        return report
    for i, (mine, theirs) in enumerate(zip(kernel, endpoint_results)):
        for name in fields:
            if not _same(mine.get(name), theirs.get(name)):
                report.differences.append(
                    f"sample {i + 1} {name}: kernel {_short(mine.get(name))} != endpoint {_short(theirs.get(name))}")
    return report


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=0, abs_tol=SCORE_TOLERANCE)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
