"""What a request can ask for, how a Doc becomes JSON, and which components a set of fields needs.

Component selection uses spaCy's own metadata (what each component assigns and requires, which
components listen to a shared tok2vec). A component whose effect cannot be known (no declared
``assigns``, or one that retokenizes) always runs, so results for the requested fields are the same
as the full pipeline's.

Besides the built-in fields, ``ext:NAME`` asks for the value of a ``Doc._.NAME`` extension attribute
that the pipeline's code registered (``Doc.set_extension``); it must be JSON as it is (a value that is
not is that row's error, never a silent conversion).
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set

FIELDS: tuple = ("ents", "cats", "tokens", "sents", "spans")
EXT_PREFIX = "ext:"

# Doc/Token attributes (spaCy's analysis names) each field reads. ``None``: every attribute.
_FIELD_ATTRS: Dict[str, Optional[Set[str]]] = {
    "ents": {"doc.ents", "token.ent_iob", "token.ent_type"},
    "cats": {"doc.cats"},
    "sents": {"doc.sents", "token.is_sent_start", "token.sent_start"},
    "spans": {"doc.spans"},
    "tokens": None,
}
_SENT_ATTRS = _FIELD_ATTRS["sents"] | {"token.dep", "token.head"}


def extension_names() -> List[str]:
    """The ``Doc._`` attributes registered in this process that a request may read: every extension
    but methods (which need arguments). Read after the pipeline loaded: its components register them."""
    from spacy.tokens.underscore import Underscore

    return sorted(name for name, (_default, method, _getter, _setter) in Underscore.doc_extensions.items()
                  if method is None and isinstance(name, str))


def is_extension_field(field: str) -> bool:
    return field.startswith(EXT_PREFIX)


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
        """Every built-in field a request may ask for: all but ``sents`` when nothing can set sentences."""
        return [f for f in FIELDS if f != "sents" or self.can_set_sentences()]

    def extension_fields(self) -> List[str]:
        """``ext:NAME`` for every Doc extension registered in this process (see ``extension_names``)."""
        return [EXT_PREFIX + name for name in extension_names()]

    def _attrs(self, field: str) -> Optional[Set[str]]:
        """What ``field`` reads, in spaCy's analysis names; ``None``: it may read anything."""
        if not is_extension_field(field):
            return _FIELD_ATTRS[field]
        from spacy.tokens import Doc

        name = field[len(EXT_PREFIX):]
        extension = Doc.get_extension(name)
        attr = f"doc._.{name}"
        # A getter computes from anything; an attribute nobody declares may be set by any component.
        if extension is None or extension[2] is not None or not self._someone_assigns({attr}):
            return None
        return {attr}

    def can_set_sentences(self) -> bool:
        """Only when a component declares that it sets sentence boundaries (parser, senter, sentencizer, or
        one of the user's with ``assigns=["token.is_sent_start"]``): a component that declares nothing
        may do anything, but offering ``sents`` on that guess fails every request that asks for it."""
        return self._someone_assigns(_SENT_ATTRS)

    def _someone_assigns(self, attrs: Optional[Set[str]]) -> bool:
        return any(attrs is None or self._assigns[n] & attrs for n in self.names)

    def needed_components(self, fields: Iterable[str]) -> List[str]:
        """Components to run for ``fields``, in pipeline order."""
        wanted: Set[str] = set()
        for field in fields:
            attrs = self._attrs(field)
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


class NotJSON(TypeError):
    """An ``ext:`` field whose value cannot be JSON as it is: the row's error, with the field named."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _extension_value(doc: Any, field: str) -> Any:
    name = field[len(EXT_PREFIX):]
    value = doc._.get(name)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        kind = type(value)
        what = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        raise NotJSON(field, f"Doc._.{name} is a {what} that is not JSON-serializable "
                             f"({exc}); make the component store a str, number, bool, None, or a list or dict of "
                             "those (e.g. float(x) or array.tolist())") from None
    return value


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
        elif is_extension_field(field):
            out[field] = _extension_value(doc, field)
    return out
