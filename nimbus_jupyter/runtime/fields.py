"""What a request can ask for, how a Doc becomes JSON, and which components a set of fields needs.

Component selection uses spaCy's own metadata (what each component assigns and requires, which
components listen to a shared tok2vec). A component whose effect cannot be known (no declared
``assigns``, or one that retokenizes) always runs, so results for the requested fields are the same
as the full pipeline's.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence, Set

FIELDS: tuple = ("ents", "cats", "tokens", "sents", "spans")

# Doc/Token attributes (spaCy's analysis names) each field reads. ``None``: every attribute.
_FIELD_ATTRS: Dict[str, Optional[Set[str]]] = {
    "ents": {"doc.ents", "token.ent_iob", "token.ent_type"},
    "cats": {"doc.cats"},
    "sents": {"doc.sents", "token.is_sent_start", "token.sent_start"},
    "spans": {"doc.spans"},
    "tokens": None,
}
_SENT_ATTRS = _FIELD_ATTRS["sents"] | {"token.dep", "token.head"}


class PipelineFields:
    """Field facts about one loaded pipeline: defaults, availability and component selection."""

    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp
        self.names: List[str] = list(nlp.pipe_names)
        self._assigns: Dict[str, Set[str]] = {}
        self._requires: Dict[str, Set[str]] = {}
        self._always: Set[str] = set()
        for name in self.names:
            meta = nlp.get_pipe_meta(name)
            self._assigns[name] = set(meta.assigns)
            self._requires[name] = set(meta.requires)
            if not meta.assigns or meta.retokenizes:
                self._always.add(name)
        self._listened_by: Dict[str, str] = {}
        for name in self.names:
            for listener in getattr(nlp.get_pipe(name), "listening_components", None) or []:
                self._listened_by[listener] = name
        self._disable_cache: Dict[frozenset, List[str]] = {}

    def default_fields(self) -> List[str]:
        """The fields the pipeline declares it sets: ents and/or cats, else tokens."""
        out = [f for f in ("ents", "cats") if self._someone_assigns(_FIELD_ATTRS[f])]
        return out or ["tokens"]

    def available_fields(self) -> List[str]:
        """Every field a request may ask for: all but ``sents`` when nothing can set sentences."""
        return [f for f in FIELDS if f != "sents" or self.can_set_sentences()]

    def can_set_sentences(self) -> bool:
        return self._someone_assigns(_SENT_ATTRS) or any(n in self._always for n in self.names)

    def _someone_assigns(self, attrs: Optional[Set[str]]) -> bool:
        return any(attrs is None or self._assigns[n] & attrs for n in self.names)

    def needed_components(self, fields: Iterable[str]) -> List[str]:
        """Components to run for ``fields``, in pipeline order."""
        wanted: Set[str] = set()
        for field in fields:
            attrs = _FIELD_ATTRS[field]
            if attrs is None:
                return list(self.names)
            wanted |= attrs
        needed = {n for n in self.names if n in self._always or self._assigns[n] & wanted}
        queue = list(needed)
        while queue:
            name = queue.pop()
            deps = set()
            position = self.names.index(name)
            for earlier in self.names[:position]:
                if self._assigns[earlier] & self._requires[name]:
                    deps.add(earlier)
            if name in self._listened_by:
                deps.add(self._listened_by[name])
            for dep in deps - needed:
                needed.add(dep)
                queue.append(dep)
        return [n for n in self.names if n in needed]

    def disabled_for(self, fields: Sequence[str]) -> List[str]:
        key = frozenset(fields)
        if key not in self._disable_cache:
            keep = set(self.needed_components(fields))
            self._disable_cache[key] = [n for n in self.names if n not in keep]
        return self._disable_cache[key]


class FieldUnavailable(Exception):
    """A requested field the pipeline did not set on this Doc (e.g. sentences without a parser)."""


def _span(span: Any) -> Dict[str, Any]:
    return {"text": span.text, "label": span.label_, "start": span.start_char, "end": span.end_char}


def doc_to_result(doc: Any, fields: Sequence[str]) -> Dict[str, Any]:
    """The JSON-ready result of one Doc, with exactly the requested fields."""
    out: Dict[str, Any] = {}
    for field in fields:
        if field == "ents":
            out["ents"] = [_span(e) for e in doc.ents]
        elif field == "cats":
            out["cats"] = {label: float(score) for label, score in doc.cats.items()}
        elif field == "sents":
            if len(doc) and not doc.has_annotation("SENT_START"):
                raise FieldUnavailable(
                    "field 'sents' needs sentence boundaries, and no component of this pipeline set "
                    "them; add a 'sentencizer' or 'senter' to the pipeline, or leave 'sents' out"
                )
            out["sents"] = [{"text": s.text, "start": s.start_char, "end": s.end_char} for s in doc.sents]
        elif field == "spans":
            out["spans"] = {key: [_span(s) for s in group] for key, group in doc.spans.items()}
        elif field == "tokens":
            out["tokens"] = [
                {
                    "text": t.text, "start": t.idx, "ws": bool(t.whitespace_), "lemma": t.lemma_,
                    "pos": t.pos_, "tag": t.tag_, "dep": t.dep_, "head": t.head.i,
                    "morph": str(t.morph), "ent_iob": t.ent_iob_, "ent_type": t.ent_type_,
                }
                for t in doc
            ]
    return out
