"""Results, parity reports and deployment lists as HTML (for widgets) and as text (everywhere else)."""
from __future__ import annotations

import html
from typing import Any, Dict, List, Sequence

from ...api.parity import ParityReport


def _clip(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _top(cats: Dict[str, float]) -> tuple:
    return max(cats.items(), key=lambda kv: kv[1]) if cats else ("", 0.0)


def samples_text(texts: Sequence[str], results: Sequence[Dict[str, Any]]) -> str:
    lines = []
    for i, (text, result) in enumerate(zip(texts, results), 1):
        parts = []
        if "ents" in result:
            parts.append("ents: " + (", ".join(f"{e['text']}/{e['label']}" for e in result["ents"]) or "none"))
        if "cats" in result:
            label, score = _top(result["cats"])
            parts.append(f"cats: {label} {score:.3f}" + ("" if not label else f" (of {len(result['cats'])})"))
        for key in ("sents", "tokens"):
            if key in result:
                parts.append(f"{key}: {len(result[key])}")
        if "spans" in result:
            parts.append("spans: " + ", ".join(f"{k}={len(v)}" for k, v in result["spans"].items()))
        lines.append(f"  {i}. {_clip(text)!r} -> {'; '.join(parts)}")
    return "\n".join(lines)


def samples_html(texts: Sequence[str], results: Sequence[Dict[str, Any]]) -> str:
    """Entities the displaCy way; categories as a small table with the top label first."""
    from spacy import displacy

    blocks: List[str] = []
    if results and "ents" in results[0]:
        docs = [{"text": t, "ents": [{"start": e["start"], "end": e["end"], "label": e["label"]} for e in r["ents"]], "title": None}
                for t, r in zip(texts, results)]
        blocks.append(displacy.render(docs, style="ent", manual=True, page=False, jupyter=False))
    if results and "cats" in results[0]:
        rows = []
        for text, result in zip(texts, results):
            ranked = sorted(result["cats"].items(), key=lambda kv: -kv[1])
            cells = " ".join(f"<span style='margin-right:1em'>{'<b>' if j == 0 else ''}{html.escape(k)} {v:.3f}{'</b>' if j == 0 else ''}</span>"
                             for j, (k, v) in enumerate(ranked[:5]))
            rows.append(f"<tr><td style='text-align:left'>{html.escape(_clip(text))}</td><td style='text-align:left'>{cells}</td></tr>")
        blocks.append("<table><thead><tr><th style='text-align:left'>text</th><th style='text-align:left'>categories</th></tr></thead>"
                      f"<tbody>{''.join(rows)}</tbody></table>")
    if not blocks:
        blocks.append(f"<pre>{html.escape(samples_text(texts, results))}</pre>")
    return "".join(blocks)


def parity_html(report: ParityReport) -> str:
    if report.ok:
        return f"<div style='color:var(--jp-success-color1, green)'>✔ {html.escape(report.summary())}</div>"
    items = "".join(f"<li><code>{html.escape(d)}</code></li>" for d in report.differences)
    return (f"<div style='color:var(--jp-error-color1, #c00)'>✖ parity: {len(report.differences)} difference(s) "
            f"between the kernel and the endpoint</div><ul>{items}</ul>")


def deployments_rows(deployments: Sequence[Any]) -> List[Dict[str, Any]]:
    return [{
        "name": d.name, "target": d.target, "status": d.status, "url": d.url,
        "components": ", ".join(d.components), "version": d.version, "created": d.created,
        "detail": d.detail,
    } for d in deployments]
