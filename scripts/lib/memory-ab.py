"""A/B of the agent's memory after a reflection session, or idle, between
agent binaries: RSS, anonymous and file-backed (/proc/PID/smaps_rollup).

usage: python scripts/lib/memory-ab.py [--idle] [--rounds N] AGENT [AGENT ...]

Each round starts each agent in turn in temporary XDG folders, each
binary first dropped from the page cache (`sandboxed_agent.evict`). The
default measures reflection: Health/Check and AgentService.GetInfo, then
"before"; tests/python/check_agent.py (both reflection versions, health,
GetInfo from reflected descriptors); then 1 s and 62 s after it (past
the 30 s drop of reflection's services and the release a minute after
the first call). `--idle` measures 1 s after start-up and one GetInfo,
and 62 s later. Three rounds by default. Run it with the Python of the
tests' virtualenv (grpcio and grpcio-reflection; `scripts/test` makes
one under ~/.cache/omnipanel-tools/). docs/BENCHMARKS.md ("Reflection
memory") has the figures.
"""
import os, subprocess, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sandboxed_agent
import grpc

CHECK_AGENT = os.path.join(HERE, "../../tests/python/check_agent.py")


def memory(pid):
    """(RSS, anonymous, file-backed) in MB."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Anonymous"):
                fields[key] = int(rest.split()[0]) / 1024
    return fields["Rss"], fields["Anonymous"], fields["Rss"] - fields["Anonymous"]


def plain_calls(sock, health=True):
    """GetInfo (and Health/Check) as raw bytes: no generated code, no
    reflection."""
    channel = grpc.insecure_channel(f"unix:{sock}", options=[("grpc.default_authority", "localhost")])
    raw = dict(request_serializer=lambda m: m, response_deserializer=lambda m: m)
    if health:
        channel.unary_unary("/grpc.health.v1.Health/Check", **raw)(b"")
    channel.unary_unary("/omnipanel.v1.AgentService/GetInfo", **raw)(b"")
    channel.close()


def shown(m):
    return f"{m[0]:.2f} MB (anon {m[1]:.2f}, file {m[2]:.2f})"


def reflection_round(agent, sock, pid):
    time.sleep(3)
    plain_calls(sock)
    time.sleep(2)
    before = memory(pid)
    out = subprocess.run([sys.executable, CHECK_AGENT, sock], capture_output=True, text=True,
                         cwd=os.path.dirname(CHECK_AGENT))
    if out.returncode != 0:
        sys.exit(f"check_agent.py failed against {agent}: {out.stderr}")
    time.sleep(1)
    session = memory(pid)
    time.sleep(61)
    after = memory(pid)
    change = " ".join(f"{name} {a - b:+.2f}" for name, a, b in zip(("RSS", "anon", "file"), after, before))
    return f"before {shown(before)} | session {shown(session)} | +62 s {shown(after)} | change {change}"


def idle_round(agent, sock, pid):
    plain_calls(sock, health=False)
    time.sleep(1)
    first = memory(pid)
    time.sleep(62)
    return f"1 s after one call {shown(first)} | 62 s later {shown(memory(pid))}"


def main():
    args = sys.argv[1:]
    idle = "--idle" in args
    rounds = 3
    if "--rounds" in args:
        at = args.index("--rounds")
        rounds = int(args[at + 1])
        del args[at:at + 2]
    agents = [a for a in args if a != "--idle"]
    if not agents:
        sys.exit(__doc__)
    for n in range(rounds):
        for agent in agents:
            sandboxed_agent.evict(agent)
            with sandboxed_agent.started(agent) as (process, sock):
                line = (idle_round if idle else reflection_round)(agent, sock, process.pid)
            print(f"round {n + 1}, {agent}: {line}", flush=True)


if __name__ == "__main__":
    main()
