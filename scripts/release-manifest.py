#!/usr/bin/env python3
"""Write the self-update manifest (JSON, on stdout) for signed artifacts.

    scripts/release-manifest.py --version 1.2.3 --notes TEXT \
        --base-url https://host/releases/v1.2.3 omnipanel-linux-x86_64.tar.gz ...

Each artifact `omnipanel-PLATFORM.tar.gz` must have its minisign signature
beside it (`.minisig`). The format is what the agent's
agent/core/src/updates/manifest.rs reads: version, notes, and per platform
(e.g. "linux-x86_64") the URL, size, SHA-256 and signature text.
"""
import argparse
import hashlib
import json
import os
import re
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True)
    parser.add_argument("--notes", default="")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("artifacts", nargs="+")
    args = parser.parse_args()
    platforms = {}
    for path in args.artifacts:
        name = os.path.basename(path)
        match = re.fullmatch(r"omnipanel-(.+)\.tar\.gz", name)
        if not match:
            print(f"release-manifest: {name} is not named omnipanel-PLATFORM.tar.gz", file=sys.stderr)
            return 1
        signature_path = path + ".minisig"
        if not os.path.exists(signature_path):
            print(f"release-manifest: {name} has no signature ({signature_path})", file=sys.stderr)
            return 1
        with open(path, "rb") as artifact:
            data = artifact.read()
        with open(signature_path, encoding="utf-8") as signature:
            signature_text = signature.read()
        platforms[match.group(1)] = {
            "url": f"{args.base_url.rstrip('/')}/{name}",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "signature": signature_text,
        }
    json.dump({"version": args.version, "notes": args.notes, "platforms": platforms}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
