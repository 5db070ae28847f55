"""A/B of FindFiles between agent binaries, over the Python client.

usage: python scripts/lib/find-ab.py AGENT [AGENT ...]

Each round starts each agent in turn in temporary XDG folders, opens the
`--bench files` tree (100 000 files in 10 000 folders, generated once in
/tmp/fb-tree), waits for the index, and times that bench's 12 queries x 5
(limit 50): p50 and p90 per run, five rounds interleaved, then each
agent's median and the spread of its p50s. Run it with the Python client's
virtualenv (scripts/lib/python-client.sh makes one). docs/BENCHMARKS.md has
the figures.
"""
import os, sys, time, statistics
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../clients/python/src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sandboxed_agent
import omnipanel
from omnipanel.v1 import files_pb2, projects_pb2

tree = "/tmp/fb-tree"
if not os.path.isdir(tree):
    for i in range(100_000):
        d = f"{tree}/pkg{i % 500:03}/module{(i // 500) % 20:02}"
        if i < 10_000:
            os.makedirs(d, exist_ok=True)
        open(f"{d}/file_{i}_{['alpha','beta','gamma','delta'][i % 4]}.rs", "w").close()
queries = ["f","fi","fil","file","file_4","file_42","gamma","pkg12mod3","p1m1f1","delta.rs","zzzz","m07beta"]

def run(agent):
    with sandboxed_agent.started(agent) as (p, sock):
        with omnipanel.connect(socket=sock, owner=True) as op:
            proj = op.projects.OpenProject(projects_pb2.OpenProjectRequest(path=tree)).project.id
            while True:
                r = op.files.FindFiles(files_pb2.FindFilesRequest(project=proj, query="", limit=1))
                if r.index_complete and r.total_files >= 100_000: break
                time.sleep(0.05)
            times = []
            for _ in range(5):
                for q in queries:
                    t = time.perf_counter()
                    op.files.FindFiles(files_pb2.FindFilesRequest(project=proj, query=q, limit=50))
                    times.append((time.perf_counter() - t) * 1000)
            times.sort()
            return times[len(times)//2], times[round((len(times)-1)*0.9)]

results = {a: [] for a in sys.argv[1:]}
for rnd in range(5):
    for a in sys.argv[1:]:
        p50, p90 = run(a)
        results[a].append((p50, p90))
        print(f"round {rnd+1} {os.path.basename(a)}: p50 {p50:.1f} ms, p90 {p90:.1f} ms", flush=True)
for a, rs in results.items():
    p50s = [r[0] for r in rs]; p90s = [r[1] for r in rs]
    print(f"{os.path.basename(a)}: p50s {', '.join(f'{x:.1f}' for x in p50s)} (median {statistics.median(p50s):.1f}, spread {max(p50s)/min(p50s):.2f}x); p90s {', '.join(f'{x:.1f}' for x in p90s)} (median {statistics.median(p90s):.1f})")
