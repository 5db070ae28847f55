"""The examples in clients/python/examples, run as a user would (separate
processes, with a token the user approved in OMNIPANEL_TOKEN)."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import omnipanel

from conftest import EXAMPLES, PATIENCE, Sandbox, admit


def _token(agent: Sandbox, scopes: List[str]) -> str:
    admit(agent, scopes, client_name="examples").close()
    entry = omnipanel.TokenCache().get(str(agent.socket), "examples")
    assert entry is not None
    return str(entry["token"])


def test_pull_and_chat_examples(agent: Sandbox) -> None:
    token = _token(agent, ["write", "infer"])
    pulled = agent.run_example("pull.py", "llama3.2:1b", env={"OMNIPANEL_TOKEN": token})
    assert pulled.returncode == 0, pulled.stderr
    assert "100%" in pulled.stdout and "[" + "#" * 30 + "]" in pulled.stdout
    assert "llama3.2:1b is installed" in pulled.stdout

    chat = agent.run_example("chat.py", "--model", "llama3.2:1b", "what", "is", "this?", env={"OMNIPANEL_TOKEN": token})
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.startswith("You said: what is this?\nThis reply comes from fake-ollama.")

    missing = agent.run_example("chat.py", "--model", "not-installed:1b", "hi", env={"OMNIPANEL_TOKEN": token})
    assert missing.returncode == 1 and "MODEL_NOT_FOUND" in missing.stderr


def test_watch_example(agent: Sandbox) -> None:
    # Under the home folder: the default `access.project_roots`.
    project = agent.root / "home/watched"
    project.mkdir()
    with omnipanel.connect(owner=True) as op:
        op.projects.OpenProject(path=str(project))
    token = _token(agent, ["read"])
    env = {**agent.env(), "OMNIPANEL_TOKEN": token}
    watcher = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "watch.py"), "--count", "1", str(project)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "watching"
        deadline = time.monotonic() + PATIENCE
        n = 0
        while watcher.poll() is None:
            assert time.monotonic() < deadline, "the watch example saw no change"
            n += 1
            (project / "notes.md").write_text(f"version {n}\n")
            time.sleep(0.2)
        out = watcher.stdout.read()
        assert watcher.returncode == 0, watcher.stderr.read() if watcher.stderr else ""
        assert "notes.md" in out, out
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.wait()


def test_examples_without_an_agent(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "OMNIPANEL_SOCKET": str(tmp_path / "none.sock"), "HOME": str(tmp_path)}
    if "PYTHONPATH" in os.environ:  # a run from the source tree
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "chat.py"), "hi"], env=env, capture_output=True, text=True, timeout=PATIENCE
    )
    assert result.returncode == 1
    assert "the OmniPanel agent is not running" in result.stderr and "omnipanel-agent" in result.stderr


def test_first_run_asks_on_stderr_and_later_runs_do_not(agent: Sandbox) -> None:
    with omnipanel.connect(owner=True) as op:
        for _ in op.pull("test-small:latest"):
            pass
    command = [sys.executable, str(EXAMPLES / "chat.py"), "--model", "test-small:latest", "hello"]
    first = subprocess.Popen(command, env=agent.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stderr is not None and first.stdout is not None
        shown: List[str] = []
        while True:
            line = first.stderr.readline()
            assert line, f"the example ended without asking: {''.join(shown)}"
            shown.append(line)
            if "omnipanel clients approve " in line:
                break
        text = "".join(shown)
        assert "'Python: chat.py' asks for access (infer)" in text and "Code: " in text
        request_id = line.rsplit(" ", 1)[1].strip()
        pending = agent.cli("clients", "pending").stdout
        code = text.split("Code: ", 1)[1].split()[0]
        assert code in pending, pending  # the user compares the same code
        agent.cli("clients", "approve", request_id)
        assert first.wait(PATIENCE) == 0, first.stderr.read()
        assert first.stdout.read().startswith("You said: hello")
    finally:
        if first.poll() is None:
            first.kill()
        first.wait()
    again = subprocess.run(command, env=agent.env(), capture_output=True, text=True, timeout=PATIENCE)
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert again.stdout.startswith("You said: hello")
