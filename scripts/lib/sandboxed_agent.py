"""An agent binary started for a measurement, as its service unit starts
it (`run --quiet`): temporary XDG folders, no Ollama (a closed port), its
socket awaited; shared by the A/B scripts beside it (`find-ab.py`,
`status-ab.py`, `memory-ab.py`).
"""
import contextlib, os, subprocess, tempfile, time


@contextlib.contextmanager
def started(agent):
    """Yields (process, socket path) of `agent` running in fresh folders;
    stops it and removes them afterwards."""
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ)
        for k in ["config", "data", "state", "cache", "run"]:
            os.makedirs(f"{d}/{k}")
        env.update(XDG_CONFIG_HOME=f"{d}/config", XDG_DATA_HOME=f"{d}/data", XDG_STATE_HOME=f"{d}/state",
                   XDG_CACHE_HOME=f"{d}/cache", XDG_RUNTIME_DIR=f"{d}/run", OLLAMA_HOST="127.0.0.1:9")
        os.chmod(f"{d}/run", 0o700)
        p = subprocess.Popen([agent, "run", "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sock = f"{d}/run/omnipanel/agent.sock"
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        try:
            yield p, sock
        finally:
            p.terminate()
            p.wait()


def evict(path):
    """Drops `path` from the page cache, so that binaries compared start
    from the same state: how much of an executable's code stays resident
    after a fault depends on how its file came into the cache (a fresh
    copy keeps more mapped than one read back from disk)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
