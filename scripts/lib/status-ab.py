"""A/B of GetStatus on large repositories between agent binaries, over the
Python client, with `git status` as the baseline of the same round.

usage: python scripts/lib/status-ab.py REPO AGENT [AGENT ...]

REPO is a Git repository (the cost-curves benchmark's trees, or any); the
script appends a line to one tracked file it picks (the first in `git
ls-files`) and restores it at the end. Each round starts each agent in
turn in temporary XDG folders, opens REPO, waits for the index, fills the
status cache with one GetStatus, then times 15 GetStatus calls each after
one saved line (the warm path) and, once, the first GetStatus after the
agent closed the idle repository and a line was saved (it waits 70 s: `git/handles.rs` closes
after 60 s unused) when `--idle` is given. `git status --porcelain=v2
--branch` is timed 5 times per round. With `--stage`, also 10 GetStatus
calls each after the saved file was staged or unstaged with git (the
index moved); with `--cold`, 3 after git's config was touched (a full
status). Three rounds, interleaved; medians.
Run it with the Python client's virtualenv (scripts/lib/python-client.sh
makes one). docs/BENCHMARKS.md has the figures.
"""
import os, statistics, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../clients/python/src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sandboxed_agent
import omnipanel
from omnipanel.v1 import files_pb2, git_pb2, projects_pb2

FLAGS = ("--idle", "--stage", "--cold")
args = [a for a in sys.argv[1:] if a not in FLAGS]
idle = "--idle" in sys.argv
stage = "--stage" in sys.argv
cold = "--cold" in sys.argv
repo, agents = args[0], args[1:]
victim = os.path.join(repo, subprocess.check_output(["git", "-C", repo, "ls-files"], text=True).split("\n", 1)[0])
original = open(victim, "rb").read()


def git_status_ms():
    t = time.perf_counter()
    subprocess.run(["git", "-C", repo, "status", "--porcelain=v2", "--branch"], stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t) * 1000


def run(agent):
    with sandboxed_agent.started(agent) as (p, sock):
        with omnipanel.connect(socket=sock, owner=True) as op:
            proj = op.projects.OpenProject(projects_pb2.OpenProjectRequest(path=repo)).project.id
            while not op.files.FindFiles(files_pb2.FindFilesRequest(project=proj, query="", limit=1)).index_complete:
                time.sleep(0.05)
            op.git.GetStatus(git_pb2.GetStatusRequest(project=proj))
            warm = []
            for _ in range(15):
                with open(victim, "ab") as f:
                    f.write(b"// saved\n")
                t = time.perf_counter()
                op.git.GetStatus(git_pb2.GetStatusRequest(project=proj))
                warm.append((time.perf_counter() - t) * 1000)
            moved = []
            for i in range(10 if stage else 0):
                with open(victim, "ab") as f:
                    f.write(b"// saved\n")
                what = ["add", "--", victim] if i % 2 == 0 else ["reset", "-q", "--", victim]
                subprocess.run(["git", "-C", repo, *what], check=True)
                t = time.perf_counter()
                op.git.GetStatus(git_pb2.GetStatusRequest(project=proj))
                moved.append((time.perf_counter() - t) * 1000)
            full = []
            for _ in range(3 if cold else 0):
                os.utime(os.path.join(repo, ".git", "config"))
                t = time.perf_counter()
                op.git.GetStatus(git_pb2.GetStatusRequest(project=proj))
                full.append((time.perf_counter() - t) * 1000)
            after_idle = None
            if idle:
                time.sleep(70)
                with open(victim, "ab") as f:
                    f.write(b"// saved\n")
                t = time.perf_counter()
                op.git.GetStatus(git_pb2.GetStatusRequest(project=proj))
                after_idle = (time.perf_counter() - t) * 1000
            rss = int(next(l.split()[1] for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS"))) / 1024
            return statistics.median(warm), after_idle, rss, moved, full


try:
    results = {a: [] for a in agents}
    gits = []
    for rnd in range(3):
        gits += [git_status_ms() for _ in range(5)]
        for a in agents:
            warm, after_idle, rss, moved, full = run(a)
            results[a].append((warm, after_idle, rss, moved, full))
            extra = f", after idle {after_idle:.0f} ms" if after_idle is not None else ""
            if moved:
                extra += f", after a stage or unstage {statistics.median(moved):.2f} ms"
            if full:
                extra += f", cold {statistics.median(full):.0f} ms"
            print(f"round {rnd + 1} {a}: warm {warm:.2f} ms{extra}, RSS {rss:.0f} MB", flush=True)
    git = statistics.median(gits)
    print(f"git status: median {git:.1f} ms")
    for a, rs in results.items():
        warm = statistics.median(r[0] for r in rs)
        line = f"{a}: warm {warm:.2f} ms ({warm / git:.3f}x git)"
        if idle:
            first = statistics.median(r[1] for r in rs)
            line += f", first after idle {first:.0f} ms ({first / git:.2f}x git)"
        if stage:
            moved = statistics.median(m for r in rs for m in r[3])
            line += f", after a stage or unstage {moved:.2f} ms ({moved / git:.3f}x git)"
        if cold:
            full = statistics.median(m for r in rs for m in r[4])
            line += f", cold {full:.0f} ms ({full / git:.2f}x git)"
        print(line)
finally:
    open(victim, "wb").write(original)
    subprocess.run(["git", "-C", repo, "reset", "-q", "--", victim], check=False)
