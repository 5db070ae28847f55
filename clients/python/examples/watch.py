#!/usr/bin/env python3
"""Print a project's file changes as they happen, one per line, until
interrupted (or until --count changes were printed).

Usage: watch.py [--count N] PROJECT   (a project id, name or folder)"""

import argparse
import sys

import omnipanel
from omnipanel.v1 import files_pb2


def main() -> int:
    parser = argparse.ArgumentParser(description="Follow a project's file changes.")
    parser.add_argument("--count", type=int, default=0, help="stop after this many changes (0: never)")
    parser.add_argument("project", help="project id, name or folder")
    args = parser.parse_args()
    seen = 0
    try:
        with omnipanel.connect(request_access=["read"], reason="watch a project's files") as op:
            print("watching", flush=True)
            for item in op.watch(args.project):
                if item.HasField("batch"):
                    for change in item.batch.changes:
                        kind = files_pb2.ChangeKind.Name(change.kind).replace("CHANGE_KIND_", "").lower()
                        print(f"{kind} {change.path}", flush=True)
                        seen += 1
                        if args.count and seen >= args.count:
                            return 0
                elif item.HasField("rescan_needed") or item.HasField("gap"):
                    print("(changes were lost: re-read the project)", flush=True)
    except KeyboardInterrupt:
        return 0
    except omnipanel.OmniPanelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
