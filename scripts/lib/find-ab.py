"""A/B of FindFiles between agent binaries, over the Python client.

usage: python scripts/lib/find-ab.py [--tree DIR] [--rounds N] AGENT [AGENT ...]

Each round starts each agent in turn in temporary XDG folders, opens a
tree, waits for the index to be complete, and times the benchmarks' 12
queries (`tests/trees.rs` FIND_QUERIES) x 5 (limit 50): p50 and p90 per
run, the rounds interleaved, then each agent's median and the spread of
its p50s, and each query's median time. The tree is the `--bench files`
one (100 000 files in 10 000 folders, generated once in /tmp/fb-tree)
unless --tree names another, e.g. one laid out as the cost curves' trees
(`tests/trees.rs` tree_file). Run it with the Python client's virtualenv
(scripts/lib/python-client.sh makes one). docs/BENCHMARKS.md has the
figures.
"""
import argparse, os, sys, time, statistics
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../clients/python/src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sandboxed_agent
import omnipanel
from omnipanel.v1 import files_pb2, projects_pb2

parser = argparse.ArgumentParser()
parser.add_argument("--tree")
parser.add_argument("--rounds", type=int, default=5)
parser.add_argument("agents", nargs="+")
args = parser.parse_args()

tree = args.tree or "/tmp/fb-tree"
if not args.tree and not os.path.isdir(tree):
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
                if r.index_complete: break
                time.sleep(0.05)
            # The first query packs the index: reported apart.
            t = time.perf_counter()
            op.files.FindFiles(files_pb2.FindFilesRequest(project=proj, query="f", limit=50))
            first = (time.perf_counter() - t) * 1000
            times, per_query = [], {q: [] for q in queries}
            for _ in range(5):
                for q in queries:
                    t = time.perf_counter()
                    op.files.FindFiles(files_pb2.FindFilesRequest(project=proj, query=q, limit=50))
                    ms = (time.perf_counter() - t) * 1000
                    times.append(ms)
                    per_query[q].append(ms)
            times.sort()
            return times[len(times)//2], times[round((len(times)-1)*0.9)], per_query, first

results = {a: [] for a in args.agents}
per_query = {a: {q: [] for q in queries} for a in args.agents}
for rnd in range(args.rounds):
    for a in args.agents:
        p50, p90, by_query, first = run(a)
        results[a].append((p50, p90, first))
        for q, ms in by_query.items():
            per_query[a][q].extend(ms)
        print(f"round {rnd+1} {a}: p50 {p50:.2f} ms, p90 {p90:.2f} ms, first query {first:.1f} ms", flush=True)
for a, rs in results.items():
    p50s = [r[0] for r in rs]; p90s = [r[1] for r in rs]
    print(f"{a}: p50s {', '.join(f'{x:.2f}' for x in p50s)} (median {statistics.median(p50s):.2f}, spread {max(p50s)/min(p50s):.2f}x); p90s {', '.join(f'{x:.2f}' for x in p90s)} (median {statistics.median(p90s):.2f}); first query median {statistics.median(r[2] for r in rs):.1f} ms")
    print("  per query (median ms): " + ", ".join(f"{q} {statistics.median(ms):.2f}" for q, ms in per_query[a].items()))
