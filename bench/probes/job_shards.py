"""A local job of 100,000 rows in shards of 10,000 and of 25,000 against %%nimbus_batch, in one process on one
deployment, three rounds (the order of the two jobs alternating): rows/s, each job / the round's batch, and the
runner's peak RSS (sampled every 0.2 s). Why: to choose the local shard size (targets/local/jobs.py) on the
figures, not on a guess. Run: python bench/probes/job_shards.py
"""
import os, sys, time, json, random, threading
from pathlib import Path
ROOT = str(Path(__file__).resolve().parents[2])
sys.path[:0] = [ROOT, ROOT + "/tests"]
os.environ["NIMBUS_HOME"] = "/tmp/nimbus-probe-job-shards"
import shutil; shutil.rmtree(os.environ["NIMBUS_HOME"], ignore_errors=True)
import pandas as pd, psutil
import nimbus_jupyter as nj
from nimbus_jupyter.core.jobs import JobStore
from pipelines import textcat_pipeline
nj.deploy(textcat_pipeline(), "ss", workers=2, show=False)
words = ["great", "phone", "broken", "laptop", "love", "avoid", "fine", "slow", "fast", "cheap", "Berlin", "Apple"]
def texts(seed, n=100000):
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(8, 30))) + f" {seed}-{i}" for i in range(n)]
def job(src, rows):
    t0 = time.perf_counter(); j = nj.submit(src, "ss", column="review", quiet=True, shard_rows=rows)
    peak = [0]; stop = threading.Event()
    def sample():
        while not stop.is_set():
            try:
                st = json.loads((JobStore().dir(j.id) / "state.json").read_text()); peak[0] = max(peak[0], psutil.Process(int(st["pid"])).memory_info().rss)
            except Exception: pass
            time.sleep(0.2)
    th = threading.Thread(target=sample, daemon=True); th.start()
    s = j.wait(progress=False); stop.set(); th.join(); assert s.state == "succeeded"
    return 100000 / (time.perf_counter() - t0), peak[0] / 2**20
try:
    for rnd in range(3):
        t0 = time.perf_counter(); nj.batch(pd.Series(texts(rnd)), "ss", progress=False); b = 100000 / (time.perf_counter() - t0)
        out = {}
        for k, rows in enumerate((10000, 25000) if rnd % 2 == 0 else (25000, 10000)):
            src = f"{os.environ['NIMBUS_HOME']}/s{rnd}-{k}.parquet"; pd.DataFrame({"review": texts(100 + 10 * rnd + k)}).to_parquet(src)
            out[rows] = job(src, rows)
        print(f"batch {b:,.0f}/s  10k {out[10000][0]:,.0f}/s ({out[10000][0]/b:.3f}, {out[10000][1]:.0f} MiB)  25k {out[25000][0]:,.0f}/s ({out[25000][0]/b:.3f}, {out[25000][1]:.0f} MiB)", flush=True)
finally:
    nj.destroy("ss")
