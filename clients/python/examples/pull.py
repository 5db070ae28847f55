#!/usr/bin/env python3
"""Pull a model through the OmniPanel agent with a progress bar on stdout.

Usage: pull.py MODEL   (e.g. pull.py llama3.2:1b)

The first run asks for access (the code to approve is printed on stderr);
the token is kept, so later runs do not ask again."""

import sys

import omnipanel

WIDTH = 30


def bar(done: int, total: int) -> str:
    if total <= 0:
        return "[" + " " * WIDTH + "]   ?%"
    filled = min(WIDTH, done * WIDTH // total)
    return "[" + "#" * filled + "." * (WIDTH - filled) + f"] {done * 100 // total:3d}%"


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    model = sys.argv[1]
    try:
        with omnipanel.connect(request_access=["write"], reason=f"pull {model}") as op:
            for progress in op.pull(model):
                line = f"\r{bar(progress.completed_bytes, progress.total_bytes)} {progress.status[:40]:<40}"
                sys.stdout.write(line)
                sys.stdout.flush()
            sys.stdout.write("\n")
            print(f"{model} is installed")
    except omnipanel.OmniPanelError as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
