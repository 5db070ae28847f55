"""The streaming helpers against the real agent and the Ollama double: a
pull's progress, chat tokens, a project's file changes, and events that
carry on across an agent restart."""

import queue
import threading
import time
from pathlib import Path
from typing import List, Union

import omnipanel
from omnipanel.v1 import agent_pb2, events_pb2, models_pb2

from conftest import PATIENCE, Sandbox

CANNED = "This reply comes from fake-ollama."


def test_pull_progress(agent: Sandbox) -> None:
    with omnipanel.connect(owner=True) as op:
        updates = list(op.pull("qwen2.5:0.5b"))
        assert updates, "no progress at all"
        assert updates[-1].state == models_pb2.PULL_STATE_SUCCEEDED
        assert updates[-1].total_bytes > 0 and updates[-1].completed_bytes == updates[-1].total_bytes
        assert any(u.completed_bytes < u.total_bytes for u in updates), "no intermediate progress"
        assert "qwen2.5:0.5b" in [m.name for m in op.models.ListModels().models]


def test_pull_of_an_unknown_model_raises(agent: Sandbox) -> None:
    with omnipanel.connect(owner=True) as op:
        try:
            for _ in op.pull("no-such-model:9b"):
                pass
        except omnipanel.OmniPanelError as err:
            assert "no-such-model" in str(err) or err.reason == "MODEL_NOT_IN_REGISTRY"
        else:
            raise AssertionError("pulling an unknown model succeeded")


def test_chat_tokens(agent: Sandbox) -> None:
    with omnipanel.connect(owner=True) as op:
        for _ in op.pull("test-small:latest"):
            pass
        tokens = list(op.chat("test-small:latest", "Hello   there"))
        assert len(tokens) > 3, tokens
        assert "".join(tokens) == f"You said: Hello there\n{CANNED}"
        # Dicts, pairs and messages are all conversations.
        reply = "".join(op.chat("test-small:latest", [("system", "be brief"), {"role": "user", "content": "hi"}]))
        assert reply.endswith(CANNED)


def test_watch_sees_file_changes(agent: Sandbox, tmp_path: Path) -> None:
    project = agent.root / "projects/demo"
    project.mkdir()
    with omnipanel.connect(owner=True) as op:
        opened = op.projects.OpenProject(path=str(project))
        changes: "queue.Queue[str]" = queue.Queue()
        stream = op.watch(opened.project.id)

        def follow() -> None:
            try:
                for item in stream:
                    if item.HasField("batch"):
                        for change in item.batch.changes:
                            changes.put(change.path)
            except omnipanel.Cancelled:
                pass  # the client closed at the end of the test

        threading.Thread(target=follow, daemon=True).start()
        # The watch is live once the agent accepted it; write until seen,
        # since a write before that moment is not a change we follow.
        deadline = time.monotonic() + PATIENCE
        seen: List[str] = []
        n = 0
        while "hello.txt" not in seen:
            assert time.monotonic() < deadline, f"no change seen; got {seen}"
            n += 1
            (project / "hello.txt").write_text(f"hello {n}\n")
            try:
                seen.append(changes.get(timeout=1))
            except queue.Empty:
                pass


def poke(op: omnipanel.Client) -> None:
    """Publish an event: a settings change (alternating, so each is one)."""
    poke.count += 1  # type: ignore[attr-defined]
    level = "debug" if poke.count % 2 else "info"  # type: ignore[attr-defined]
    op.agent.UpdateSettings(changes=[{"key": "log.filter", "value": level}])


poke.count = 0  # type: ignore[attr-defined]


def test_events_resume_after_an_agent_restart(agent: Sandbox) -> None:
    with omnipanel.connect(owner=True) as op:
        first_instance = op.info.instance_id
        got: "queue.Queue[Union[events_pb2.Event, agent_pb2.EventGap]]" = queue.Queue()
        errors: "queue.Queue[BaseException]" = queue.Queue()

        def follow() -> None:
            try:
                for item in op.events(give_up_after=PATIENCE):
                    got.put(item)
            except BaseException as err:
                errors.put(err)

        threading.Thread(target=follow, daemon=True).start()
        # Wait until the stream is live: a settings change shows up.
        deadline = time.monotonic() + PATIENCE
        while True:
            assert time.monotonic() < deadline, "no live event before the restart"
            poke(op)
            try:
                item = got.get(timeout=1)
                if isinstance(item, events_pb2.Event):
                    assert item.instance_id == first_instance
                    break
            except queue.Empty:
                pass

        agent.stop()
        # Stay down a while, so the iterator meets a missing agent (its
        # reconnects are refused) and not only an ended stream.
        time.sleep(1.5)
        agent.start()
        # The same iterator carries on with the new agent's events.
        deadline = time.monotonic() + PATIENCE
        while True:
            assert errors.empty(), errors.queue[0]
            assert time.monotonic() < deadline, "the event stream did not resume"
            try:
                item = got.get(timeout=1)
            except queue.Empty:
                with omnipanel.connect(owner=True) as again:
                    poke(again)
                continue
            if isinstance(item, events_pb2.Event) and item.instance_id != first_instance:
                break
