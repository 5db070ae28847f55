#!/usr/bin/env python3
"""Ask a local model through the OmniPanel agent; the reply streams to stdout.

Usage: chat.py [--model MODEL] PROMPT...   (no --model: the default model)"""

import argparse
import sys

import omnipanel


def main() -> int:
    parser = argparse.ArgumentParser(description="Chat with a model through the OmniPanel agent.")
    parser.add_argument("--model", default="", help="model name (default: the agent's default model)")
    parser.add_argument("prompt", nargs="+", help="what to ask")
    args = parser.parse_args()
    try:
        with omnipanel.connect(request_access=["infer"], reason="answer questions from the shell") as op:
            for token in op.chat(args.model, [{"role": "user", "content": " ".join(args.prompt)}]):
                sys.stdout.write(token)
                sys.stdout.flush()
            sys.stdout.write("\n")
    except omnipanel.OmniPanelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
