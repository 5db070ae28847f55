#!/usr/bin/env python3
"""Line and region coverage per crate and overall, from the JSON summary of
`cargo llvm-cov report --json --summary-only` (llvm-cov's export format).
Files are given to the workspace crate whose folder holds them (the longest
match). Files outside every crate folder are not ours: they come from
binaries of another checkout left in the target folder (a target seeded
from elsewhere), and are listed as such but left out of the overall figure
and the gate. Prints a table; --markdown writes the same table as Markdown (for
docs/QUALITY.md); --gate N exits 1 when overall line coverage is below N %.

usage: coverage-summary.py SUMMARY.json --root WORKSPACE [--markdown OUT.md] [--gate N]
"""

import argparse
import json
import os
import sys

# Crate folder (relative to the workspace) -> crate name, as in Cargo.toml.
CRATES = {
    "proto": "omnipanel-proto",
    "agent/paths": "omnipanel-paths",
    "agent/crash": "omnipanel-crash",
    "agent/core": "omnipanel-core",
    "agent": "omnipanel-agent",
    "clients/rust": "omnipanel-client",
    "clients/cli": "omnipanel-cli",
    "tests": "omnipanel-tests",
    "tray": "omnipanel-tray",
    "fuzz/targets": "omnipanel-fuzz-targets",
}

OUTSIDE = "(outside the workspace)"


def crate_of(path: str, root: str) -> str:
    rel = os.path.relpath(path, root)
    best = ""
    for folder in CRATES:
        if (rel == folder or rel.startswith(folder + "/")) and len(folder) > len(best):
            best = folder
    return CRATES.get(best, OUTSIDE)


def percent(covered: int, count: int) -> float:
    return 100.0 * covered / count if count else 100.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("summary")
    parser.add_argument("--root", required=True)
    parser.add_argument("--markdown")
    parser.add_argument("--gate", type=float)
    args = parser.parse_args()

    with open(args.summary, encoding="utf-8") as f:
        export = json.load(f)
    data = export["data"][0]

    per_crate: dict[str, list[int]] = {}
    for entry in data["files"]:
        lines = entry["summary"]["lines"]
        regions = entry["summary"]["regions"]
        sums = per_crate.setdefault(crate_of(entry["filename"], args.root), [0, 0, 0, 0])
        sums[0] += lines["covered"]
        sums[1] += lines["count"]
        sums[2] += regions["covered"]
        sums[3] += regions["count"]
    overall = [0, 0, 0, 0]
    for name, sums in per_crate.items():
        if name != OUTSIDE:
            overall = [a + b for a, b in zip(overall, sums)]
    if OUTSIDE in per_crate:
        print(
            f"coverage: {per_crate[OUTSIDE][1]} lines in files outside the workspace"
            " (binaries of another checkout in the target folder) are left out",
            file=sys.stderr,
        )

    rows = [(name, *sums) for name, sums in sorted(per_crate.items())]
    rows.append(("overall", *overall))
    width = max(len(row[0]) for row in rows)
    print(f"{'crate':<{width}}  {'lines':>22}  {'regions':>22}")
    for name, lc, ln, rc, rn in rows:
        print(
            f"{name:<{width}}  {percent(lc, ln):6.2f} % {lc:>6}/{ln:<6}"
            f"  {percent(rc, rn):6.2f} % {rc:>6}/{rn:<6}"
        )

    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write("| crate | lines | regions |\n|---|---:|---:|\n")
            for name, lc, ln, rc, rn in rows:
                label = f"**{name}**" if name == "overall" else f"`{name}`"
                f.write(
                    f"| {label} | {percent(lc, ln):.1f} % ({lc}/{ln})"
                    f" | {percent(rc, rn):.1f} % ({rc}/{rn}) |\n"
                )

    line_percent = percent(overall[0], overall[1])
    if args.gate is not None:
        if line_percent < args.gate:
            print(
                f"coverage gate: {line_percent:.2f} % of lines is below the gate of"
                f" {args.gate:g} % (GATE_LINES in scripts/coverage); add tests for the"
                " uncovered code (target/coverage/lcov.info lists it)",
                file=sys.stderr,
            )
            return 1
        print(f"coverage gate: {line_percent:.2f} % of lines, gate {args.gate:g} %: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
