"""omnipanel.aio against the real agent: the same surface as the blocking
client, with coroutines and async iterators."""

import asyncio
import queue
import threading
from pathlib import Path
from typing import List

import pytest

import omnipanel
import omnipanel.aio
from omnipanel.v1 import agent_pb2, events_pb2

from conftest import Sandbox


def test_aio_connect_calls_and_streams(agent: Sandbox) -> None:
    async def main() -> None:
        async with await omnipanel.aio.connect() as op:
            assert op.info.protocol_version == omnipanel.PROTOCOL_VERSION and not op.is_owner
            info = await op.agent.get_info(agent_pb2.GetInfoRequest())
            assert info.pid == op.info.pid
            with pytest.raises(omnipanel.PermissionDenied) as denied:
                await op.files.ListDirectory(project="/nowhere")
            assert denied.value.reason == "NOT_ADMITTED"
        async with await omnipanel.aio.connect(owner=True) as op:
            assert op.is_owner
            progress = [p async for p in op.pull("test-small:latest")]
            assert progress[-1].completed_bytes == progress[-1].total_bytes > 0
            tokens: List[str] = [t async for t in op.chat("test-small:latest", "hi")]
            assert len(tokens) > 1 and "".join(tokens).startswith("You said: hi")
            with pytest.raises(omnipanel.NotFound) as missing:
                await op.models.ShowModel(model="nope:latest")
            assert missing.value.reason == "MODEL_NOT_FOUND"

    asyncio.run(main())


def test_aio_not_running(tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(omnipanel.AgentNotRunning):
            await omnipanel.aio.connect(socket=tmp_path / "none.sock", timeout=5)

    asyncio.run(main())


def test_aio_admission_and_confirmation(agent: Sandbox) -> None:
    with omnipanel.connect(owner=True) as owner:
        for _ in owner.pull("test-small:latest"):
            pass
    ids: "queue.Queue[str]" = queue.Queue()

    def approve() -> None:
        agent.cli("clients", "approve", ids.get(timeout=60))

    threading.Thread(target=approve, daemon=True).start()

    async def main() -> None:
        op = await omnipanel.aio.connect(
            request_access=["write"], client_name="aio client", on_pending=lambda r: ids.put(r.id)
        )
        async with op:
            assert "write" in op.scopes
            with pytest.raises(omnipanel.ConfirmationRequired) as asked:
                await op.models.DeleteModel(model="test-small:latest")
            await asyncio.to_thread(agent.cli, "confirmations", "allow", asked.value.confirmation_id)
            await asked.value.retry()
            names = [m.name for m in (await op.models.ListModels()).models]
            assert "test-small:latest" not in names

    asyncio.run(main())


def test_aio_events_and_watch(agent: Sandbox) -> None:
    project = agent.root / "home/aio-project"
    project.mkdir()

    async def main() -> None:
        async with await omnipanel.aio.connect(owner=True) as op:
            opened = await op.projects.OpenProject(path=str(project))

            async def first_change() -> str:
                async for item in op.watch(opened.project.id):
                    if item.HasField("batch") and item.batch.changes:
                        return str(item.batch.changes[0].path)
                return ""

            async def first_event() -> int:
                async for item in op.events(["settings"]):
                    if isinstance(item, events_pb2.Event):
                        return int(item.instance_id)
                return 0

            change = asyncio.ensure_future(first_change())
            event = asyncio.ensure_future(first_event())
            n = 0
            # Keep acting until both streams, live at some point, saw it.
            while not (change.done() and event.done()):
                n += 1
                (project / "a.txt").write_text(f"{n}\n")
                await op.agent.UpdateSettings(changes=[{"key": "log.filter", "value": "debug" if n % 2 else "info"}])
                await asyncio.wait([change, event], timeout=0.5)
                assert n < 120, "the aio streams saw nothing"
            assert change.result() == "a.txt"
            assert event.result() == op.info.instance_id

    asyncio.run(main())
