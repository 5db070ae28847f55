#!/usr/bin/env python3
"""Write the self-update manifest (JSON, on stdout) for signed artifacts.

    scripts/release-manifest.py --version 1.2.3 --channel stable --notes TEXT \
        --base-url https://host/releases/v1.2.3 omnipanel-linux-x86_64.tar.gz ...
    scripts/release-manifest.py --trusted-comment manifest-stable.json

Each artifact `omnipanel-PLATFORM.tar.gz` must have its minisign signature
beside it (`.minisig`). The format is what the agent's
agent/core/src/updates/manifest.rs reads: version, channel, notes, and per
platform (e.g. "linux-x86_64") the URL, size, SHA-256 and signature text.

The manifest itself must be signed too, with the same key, as
`MANIFEST.minisig` beside it, and with the trusted comment that
`--trusted-comment MANIFEST` prints (version, channel and platforms, which
the agent checks against the manifest it verified):

    minisign -S -s KEY -m manifest-stable.json \
        -t "$(scripts/release-manifest.py --trusted-comment manifest-stable.json)"

A stable channel's manifest never offers a pre-release version; this script
refuses to write one.
"""
import argparse
import hashlib
import json
import os
import re
import sys

CHANNELS = ("stable", "beta")


def trusted_comment(manifest: dict) -> str:
    """The comment agent/core/src/updates/manifest.rs `trusted_comment` writes."""
    platforms = ",".join(sorted(manifest["platforms"]))
    return f"omnipanel-manifest version={manifest['version']} channel={manifest['channel']} platforms={platforms}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trusted-comment", metavar="MANIFEST",
                        help="print the trusted comment to sign MANIFEST with, and nothing else")
    parser.add_argument("--version")
    parser.add_argument("--channel", choices=CHANNELS)
    parser.add_argument("--notes", default="")
    parser.add_argument("--base-url")
    parser.add_argument("artifacts", nargs="*")
    args = parser.parse_args()
    if args.trusted_comment:
        with open(args.trusted_comment, encoding="utf-8") as manifest:
            print(trusted_comment(json.load(manifest)))
        return 0
    missing = [f"--{name.replace('_', '-')}" for name in ("version", "channel", "base_url") if not getattr(args, name)]
    if missing or not args.artifacts:
        parser.error(f"writing a manifest needs {', '.join(missing) or 'artifacts'}")
    if args.channel == "stable" and "-" in args.version.split("+")[0]:
        print(f"release-manifest: {args.version} is a pre-release; it belongs on the beta channel only", file=sys.stderr)
        return 1
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
    manifest = {"version": args.version, "channel": args.channel, "notes": args.notes, "platforms": platforms}
    json.dump(manifest, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
