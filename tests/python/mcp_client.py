"""Drives `omnipanel mcp` with the official MCP Python SDK (a client nobody
here wrote), as an AI coding agent would, for tests/e2e/mcp.rs.

Usage: mcp_client.py OMNIPANEL_CLI PROJECT_DIR

The environment is the test sandbox's (XDG folders of a running agent), so
the same CLI run without `mcp` is the owner: it approves the access request
and answers confirmations the way the user would. Prints one JSON report
on stdout; the Rust test asserts on it.
"""

import json
import os
import subprocess
import sys
import time

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

CLI = sys.argv[1]
PROJECT = sys.argv[2]


def owner(*args):
    """The CLI as the owner (the user), JSON out."""
    done = subprocess.run(
        [CLI, "--json", *args], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"omnipanel {' '.join(args)}: {done.stderr}")
    return done.stdout


def json_lines(text):
    """The CLI prints one JSON document (a list message) or several lines."""
    text = text.strip()
    if not text:
        return []
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def items(text, field):
    found = []
    for doc in json_lines(text):
        if isinstance(doc, list):
            found.extend(doc)
        elif isinstance(doc, dict):
            # proto3 JSON leaves an empty list out: `{}` lists nothing.
            found.extend(doc.get(field, []))
    return found


def wait_for(what, field, state_word):
    """The first pending access request or confirmation, polled the way a
    user glances at the tray."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = items(owner(what, "ls" if what == "confirmations" else "pending"), field)
        pending = [entry for entry in listed if state_word in json.dumps(entry)]
        if pending:
            return pending[0]
        time.sleep(0.2)
    raise RuntimeError(f"no pending {what} appeared")


def text_of(result):
    return "\n".join(part.text for part in result.content if hasattr(part, "text"))


def outcome(result):
    return {"error": bool(result.is_error), "text": text_of(result)}


def server(*extra):
    return StdioServerParameters(
        command=CLI,
        args=["mcp", "--project", PROJECT, "--wait", "3s", *extra],
        env=dict(os.environ),
    )


async def first_session(report):
    async with stdio_client(server()) as streams:
        async with ClientSession(*streams[:2]) as session:
            await session.initialize()
            tools = await session.list_tools()
            report["tools"] = sorted(tool.name for tool in tools.tools)
            report["read_only"] = sorted(
                tool.name
                for tool in tools.tools
                if tool.annotations is not None and tool.annotations.read_only_hint
            )

            # Nobody approved yet: the tool says what the user must do.
            report["before_approval"] = outcome(await session.call_tool("git_status", {}))
            request = wait_for("clients", "requests", "PENDING")
            report["request"] = {
                "name": request.get("clientName", request.get("client_name")),
                "projects": request.get("projects"),
                "scopes": request.get("scopes"),
            }
            owner("clients", "approve", request["id"])

            call = session.call_tool
            report["git_status"] = outcome(await call("git_status", {}))
            report["list_directory"] = outcome(await call("list_directory", {"path": "."}))
            report["read_file"] = outcome(await call("read_file", {"path": "README.md"}))
            report["find_files"] = outcome(await call("find_files", {"query": "readme"}))
            report["search_text"] = outcome(
                await call("search_text", {"pattern": "needle"})
            )
            report["write_file"] = outcome(
                await call("write_file", {"path": "notes/new.txt", "content": "written by MCP\n"})
            )
            report["git_diff"] = outcome(await call("git_diff", {}))
            report["git_commit"] = outcome(
                await call("git_commit", {"message": "Add notes from MCP", "all": True})
            )
            report["escape"] = outcome(await call("read_file", {"path": "../outside.txt"}))
            report["list_models"] = outcome(await call("list_models", {}))
            report["chat"] = outcome(await call("chat", {"prompt": "Say hello"}))
            report["system_status"] = outcome(await call("system_status", {}))

            # A destructive act waits for the user's confirmation.
            report["delete_allowed"] = await answered(
                session, {"path": "doomed", "recursive": True}, "allow"
            )
            report["delete_denied"] = await answered(
                session, {"path": "kept", "recursive": True}, "deny"
            )


async def answered(session, arguments, answer):
    """Call delete_path, and meanwhile answer the confirmation it waits
    for the way the user would (`omnipanel confirmations allow|deny`)."""
    results = {}

    async def delete():
        results["outcome"] = outcome(await session.call_tool("delete_path", arguments))

    async with anyio.create_task_group() as group:
        group.start_soon(delete)
        confirmation = await anyio.to_thread.run_sync(
            wait_for, "confirmations", "confirmations", "PENDING"
        )
        await anyio.to_thread.run_sync(owner, "confirmations", answer, confirmation["id"])
    return results["outcome"]


async def second_session(report):
    """A new server process (the AI agent restarted): the kept token is
    used, nothing is asked again."""
    async with stdio_client(server()) as streams:
        async with ClientSession(*streams[:2]) as session:
            await session.initialize()
            report["second_git_status"] = outcome(
                await session.call_tool("git_status", {})
            )
    report["pending_after_second"] = items(owner("clients", "pending"), "requests")


async def read_only_session(report):
    async with stdio_client(server("--scopes", "read", "--name", "reader")) as streams:
        async with ClientSession(*streams[:2]) as session:
            await session.initialize()
            tools = await session.list_tools()
            report["read_only_tools"] = sorted(tool.name for tool in tools.tools)


async def main():
    report = {}
    await first_session(report)
    await second_session(report)
    await read_only_session(report)
    print(json.dumps(report))


anyio.run(main)
