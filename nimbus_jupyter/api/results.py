"""What a deploy did, as a value that displays itself: ``DeployResult`` (and how sample predictions look).

Text everywhere (stage durations included, so a headless run or a terminal shows where the time went);
HTML in a notebook: the endpoint, the masked key, the samples the spaCy way (displaCy for entities, a
table for categories) and the parity check. The live widget of ``%nimbus_deploy`` (faces/ui) shows the
stages as they happen and then this object's HTML, plus the Reveal button.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from ..core.display import CELL_STYLE, MUTED, WARN_COLOR, Displayable, esc, html_table, seconds_text, text_table
from ..core.plan import Plan
from ..core.progress import DONE, FAILED, PENDING, RUNNING, SKIPPED, MessageEvent, StageEvent
from .parity import ParityReport

ICONS = {PENDING: "○", RUNNING: "◐", DONE: "✔", FAILED: "✖", SKIPPED: "–"}


@dataclass(frozen=True)
class StageTiming:
    """A stage as it ended: done, failed or skipped, how long it took and what it said."""

    stage: str
    state: str
    seconds: Optional[float] = None
    detail: str = ""

    def cells(self) -> List[str]:
        return [f"{ICONS.get(self.state, '?')} {self.stage}", seconds_text(self.seconds), self.detail]


class StageRecorder:
    """A progress listener that keeps each stage's final state and the messages, for the result."""

    def __init__(self) -> None:
        self.stages: Dict[str, StageTiming] = {}
        self.messages: List[str] = []

    def __call__(self, event: Any) -> None:
        if isinstance(event, StageEvent) and event.state != RUNNING:
            self.stages[event.stage] = StageTiming(event.stage, event.state, event.seconds, event.detail)
        elif isinstance(event, MessageEvent):
            self.messages.append(event.text)

    def timings(self) -> List[StageTiming]:
        return list(self.stages.values())


@dataclass(frozen=True)
class ComponentChange:
    """The pipeline's components before and after a deploy, when they differ."""

    before: List[str]
    after: List[str]

    @classmethod
    def between(cls, before: Sequence[str], after: Sequence[str]) -> Optional["ComponentChange"]:
        return None if list(before) == list(after) else cls(list(before), list(after))

    @property
    def added(self) -> List[str]:
        return [c for c in self.after if c not in self.before]

    @property
    def removed(self) -> List[str]:
        return [c for c in self.before if c not in self.after]

    def summary(self) -> str:
        """'+ sentencizer, - ner' (or 'reordered' when only the order changed)."""
        parts = [f"+ {c}" for c in self.added] + [f"- {c}" for c in self.removed]
        return ", ".join(parts) or "reordered"

    def text(self) -> str:
        return (f"components {self.summary()} ({', '.join(self.before) or 'none'} -> "
                f"{', '.join(self.after) or 'none'})")


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
    """Entities the displaCy way; categories as a small padded table with the top label first."""
    from spacy import displacy

    blocks: List[str] = []
    if results and "ents" in results[0]:
        docs = [{"text": t, "ents": [{"start": e["start"], "end": e["end"], "label": e["label"]} for e in r["ents"]],
                 "title": None} for t, r in zip(texts, results)]
        blocks.append(displacy.render(docs, style="ent", manual=True, page=False, jupyter=False))
    if results and "cats" in results[0]:
        rows = []
        for text, result in zip(texts, results):
            ranked = sorted(result["cats"].items(), key=lambda kv: -kv[1])
            cells = " ".join(f"<span style='margin-right:1em'>{'<b>' if j == 0 else ''}{esc(k)} {v:.3f}"
                             f"{'</b>' if j == 0 else ''}</span>" for j, (k, v) in enumerate(ranked[:5]))
            rows.append([_clip(text), cells])
        blocks.append(html_table(["text", "categories"], rows, raw=[1]))
    if not blocks:
        blocks.append(f"<pre>{esc(samples_text(texts, results))}</pre>")
    return "".join(blocks)


def parity_html(report: ParityReport) -> str:
    return report.html()


@dataclass
class DeployResult(Displayable):
    """Everything a deploy found: the deployment, its stages, samples and parity, what changed."""

    deployment: Any  # api.deployment.Deployment
    unchanged: bool
    samples: List[str]
    results: List[Dict[str, Any]]
    fields: List[str]
    parity: Optional[ParityReport]
    plan: Optional[Plan] = None  # the plan that was applied
    stages: List[StageTiming] = field(default_factory=list)
    messages: List[str] = field(default_factory=list)
    seconds: float = 0.0  # the whole deploy, serialize to parity
    samples_note: str = ""  # where the samples came from (or that they are generic, and what to do)
    generic_samples: bool = False
    components: Optional[ComponentChange] = None  # set when the components changed under the name
    previous_version: Optional[int] = None  # the version serving before (None: a new deployment)

    def what_happened(self) -> str:
        """The deploy in a few words: the widget's title when it is done."""
        d = self.deployment
        if self.unchanged:
            return f"{d.name!r} unchanged: v{d.version} on {d.target} already serves this pipeline"
        took = seconds_text(self.seconds)
        if self.previous_version is None:
            return f"deployed {d.name!r} v{d.version} to {d.target} in {took}"
        return f"updated {d.name!r} on {d.target} from v{self.previous_version} to v{d.version} in {took}"

    def headline(self) -> str:
        d = self.deployment
        return f"{d.name}: {'unchanged, ' if self.unchanged else ''}ready on {d.target}, version {d.version}"

    def _key_text(self) -> str:
        masked = self.deployment.masked_key
        return f"{masked}  (full key: the deployment's .api_key)" if masked else "none (the key file is gone)"

    def text(self, stages: bool = True) -> str:
        d = self.deployment
        lines = [self.headline(), f"  {self.what_happened()}"]
        if stages and self.stages:
            lines.append(text_table([], [s.cells() for s in self.stages], numeric=[1], indent="  "))
        lines += [f"  {m}" for m in self.messages if stages]
        if self.components is not None:
            lines.append(f"  {self.components.text()}")
        lines += [f"  endpoint: {d.url}", f"  api key:  {self._key_text()}"]
        if self.generic_samples:
            lines += [f"  samples ({', '.join(self.fields)}):", f"  ⚠ {self.samples_note}"]
        else:
            lines.append(f"  samples ({', '.join(self.fields)})" + (f" {self.samples_note}:" if self.samples_note else ":"))
        lines.append(samples_text(self.samples, self.results))
        if self.parity is not None:
            lines.append(self.parity.summary())
        return "\n".join(lines)

    def endpoint_html(self) -> str:
        """The component change (if any) and the endpoint's URL and version."""
        d = self.deployment
        parts = [f"<div>{esc(self.components.text())}</div>"] if self.components is not None else []
        parts.append(f"<div>Endpoint: <a href='{esc(d.url)}/openapi.json' target='_blank' rel='noopener'>"
                     f"<code>{esc(d.url)}</code></a> (version {d.version}{', unchanged' if self.unchanged else ''})</div>")
        return "".join(parts)

    def samples_block_html(self) -> str:
        """Where the samples came from, their predictions and the parity check."""
        parts = [samples_note_html(self.samples_note, self.generic_samples), samples_html(self.samples, self.results)]
        if self.parity is not None:
            parts.append(self.parity.html())
        return "".join(parts)

    def html(self, stages: bool = True) -> str:
        parts = [f"<div><b>Nimbus</b>: {esc(self.what_happened())}</div>"]
        if stages and self.stages:
            parts.append(stages_html(self.stages, self.messages))
        parts += [self.endpoint_html(), f"<div>API key: <code>{esc(self._key_text())}</code></div>",
                  self.samples_block_html()]
        return "<div>" + "".join(parts) + "</div>"


def samples_note_html(note: str, generic: bool) -> str:
    if not note:
        return ""
    if generic:
        return f"<div style='color:{WARN_COLOR}'>⚠ {esc(note)}</div>"
    return f"<div style='{MUTED}'>samples {esc(note)}</div>"


def stages_html(stages: Sequence[StageTiming], messages: Sequence[str] = ()) -> str:
    rows = [s.cells() for s in stages]
    notes = "".join(f"<div style='{CELL_STYLE}'>{esc(m)}</div>" for m in messages)
    return html_table([], rows, numeric=[1]) + notes
