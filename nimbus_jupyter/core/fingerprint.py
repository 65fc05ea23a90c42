"""A digest of a pipeline's state read from memory, so an unchanged redeploy need not write the bundle.

Writing the bundle (``nlp.to_disk``) and hashing its files is exact but costs 0.1-0.2 s for a small
pipeline, most of it msgpack copying the weights. This digest covers the same state without copying:
the weights by their memory (``memoryview``), everything else by the bytes spaCy's own ``to_bytes``
gives for it (the fields its ``to_disk`` writes), plus the captured component code. The rule it keeps:
**equal digests mean equal bundles**. So it is used only one way: a digest equal to one computed for
a bundle built earlier *in this process* lets ``build_bundle`` reuse that bundle's files; any other
outcome writes the bundle as before. When a component's state can only be read through its
``to_disk`` (a component class from outside spaCy that has one), there is no digest: a bundle is written.

Two things make the digest differ although the pipeline did not (then a bundle is written, and its
content hash says unchanged): state spaCy keeps in a set (the sentencizer's ``punct_chars``), whose
order varies between processes; and nothing else known. Neither can make it equal when the pipeline
changed: every byte the bundle's hash covers is fed in.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

FINGERPRINT_FORMAT = 1


def pipeline_fingerprint(nlp: Any, code: Any) -> Optional[str]:
    """The digest of ``nlp`` and its captured ``code`` (a ``CapturedCode``), or None (see the module)."""
    import srsly
    from spacy.pipeline import TrainablePipe

    digest = hashlib.blake2b(digest_size=32)

    def feed(label: str, data: bytes) -> None:
        digest.update(label.encode() + b"\0" + len(data).to_bytes(8, "big"))
        digest.update(data)

    feed("format", str(FINGERPRINT_FORMAT).encode())
    feed("code", _code_bytes(code))
    feed("config.cfg", nlp.config.to_bytes())
    feed("meta.json", srsly.json_dumps(_plain(nlp.meta), sort_keys=True).encode())
    feed("tokenizer", nlp.tokenizer.to_bytes(exclude=["vocab"]))
    feed("vocab", nlp.vocab.to_bytes(exclude=["strings"]))
    for name, proc in nlp.components:  # disabled ones too: to_disk writes them
        kind = f"{type(proc).__module__}.{type(proc).__qualname__}"
        feed("component", f"{name}\0{kind}\0{hasattr(proc, 'to_disk')}".encode())
        if not hasattr(proc, "to_disk"):
            continue  # nothing of it in the bundle but its config and code, both fed in
        if not type(proc).__module__.startswith("spacy."):
            return None  # its to_disk is its own: only writing it tells what it holds
        if isinstance(proc, TrainablePipe) and getattr(proc, "model", None) is not None:
            feed(f"{name}:rest", proc.to_bytes(exclude=["vocab", "model"]))
            _feed_model(feed, name, proc.model)
        else:
            feed(f"{name}:bytes", proc.to_bytes(exclude=["vocab"]))
    return digest.hexdigest()


def _feed_model(feed: Any, name: str, model: Any) -> None:
    """What ``Model.to_bytes`` writes (thinc's ``to_dict``: nodes, attrs, shims, params), in its order,
    with the parameters by their memory. Attributes go through thinc's ``serialize_attr`` as there,
    except that the default one (msgpack) uses one packer for all: srsly's ``msgpack_dumps`` looks its
    encoders up in the entry points on every call, ~1.5 ms each, and that was most of the time."""
    import numpy
    import srsly.msgpack
    from thinc.model import serialize_attr

    packer = srsly.msgpack.Packer(use_bin_type=True)
    default = serialize_attr.dispatch(object)
    nodes = list(model.walk())
    index = {node.id: i for i, node in enumerate(nodes)}
    structure = []
    for i, node in enumerate(nodes):
        refs = {ref: (index.get(node.get_ref(ref).id, "outside") if node.has_ref(ref) else None) for ref in node.ref_names}
        dims = {dim: node.get_dim(dim) if node.has_dim(dim) else None for dim in node.dim_names}
        structure.append([i, node.name, dims, refs])
    feed(f"{name}:nodes", repr(structure).encode())
    for i, node in enumerate(nodes):
        for attr, value in node.attrs.items():
            serializer = serialize_attr.dispatch(type(value))
            try:
                data = packer.pack(value) if serializer is default else serializer(value, value, attr, node)
            except TypeError:
                continue  # to_dict leaves such attributes out too
            feed(f"{name}:attr:{i}:{attr}", data)
        for j, shim in enumerate(node.shims):
            feed(f"{name}:shim:{i}:{j}", shim.to_bytes())
        for param in node.param_names:
            if not node.has_param(param):
                feed(f"{name}:param:{i}:{param}:none", b"")
                continue
            array = numpy.ascontiguousarray(node.get_param(param))
            feed(f"{name}:param:{i}:{param}:{array.dtype.str}:{array.shape}", memoryview(array).cast("B"))


def _code_bytes(code: Any) -> bytes:
    parts = [f"notebook\0{code.notebook_source}"]
    for module, path in sorted(code.local_modules.items()):
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and p.suffix != ".pyc") if path.is_dir() else [path]
        for file in files:
            parts.append(f"module\0{module}\0{file.relative_to(path) if path.is_dir() else ''}\0")
            parts.append(file.read_bytes().decode("latin-1"))
    return "\0".join(parts).encode("utf-8", "surrogatepass")


def _plain(value: Any) -> Any:
    """``meta`` as JSON data (numpy floats as floats, as spaCy writes it)."""
    return json.loads(json.dumps(value, default=float))
