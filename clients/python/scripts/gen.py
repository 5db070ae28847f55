#!/usr/bin/env python3
"""Generates the package's gRPC stubs (`src/omnipanel/v1/`) from the agent's
.proto files in `proto/` with grpcio-tools and mypy-protobuf (typed `.pyi`
stubs), with the imports between them made package-relative.

The stubs are committed because the protos live outside the package: an
sdist or a wheel cannot regenerate them. `--check` regenerates into a
temporary folder and fails, naming the stale files, when the committed ones
differ, so a .proto change without a regeneration is caught.

Usage: gen.py [--check]   (run with the dev virtualenv's python, which has
the generator versions pinned in requirements-dev.txt)
"""

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent
PROTO_ROOT = PACKAGE_ROOT.parent.parent / "proto"
TARGET = PACKAGE_ROOT / "src" / "omnipanel" / "v1"

HEADER = '"""The agent\'s gRPC API (`omnipanel.v1`), generated from proto/ by clients/python/scripts/gen.py: do not edit."""\n'

# `from omnipanel.v1 import x_pb2 as y` -> `from . import x_pb2 as y`, so the
# stubs work wherever the package is imported from (vendored included).
ABSOLUTE_IMPORT = re.compile(r"^from omnipanel\.v1 import ", re.MULTILINE)


def generate(out: Path) -> None:
    from grpc_tools import protoc  # the pinned generator, from the dev venv

    bin_dir = Path(sys.executable).parent
    protos = sorted(str(p) for p in (PROTO_ROOT / "omnipanel" / "v1").glob("*.proto"))
    if not protos:
        sys.exit(f"error: no .proto files under {PROTO_ROOT}/omnipanel/v1")
    include = str(Path(protoc.__file__).parent / "_proto")
    raw = out / "raw"
    raw.mkdir()
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={raw}",
        f"--grpc_python_out={raw}",
        f"--mypy_out=quiet:{raw}",
        f"--mypy_grpc_out=quiet:{raw}",
        *protos,
    ]
    if protoc.main(args) != 0:
        sys.exit("error: protoc failed (see above)")
    final = out / "v1"
    final.mkdir()
    for path in sorted((raw / "omnipanel" / "v1").iterdir()):
        text = ABSOLUTE_IMPORT.sub("from . import ", path.read_text())
        (final / path.name).write_text(text)
    (final / "__init__.py").write_text(HEADER)
    (final / "py.typed").write_text("")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed stubs are stale")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / "v1"
        if not check:
            if TARGET.exists():
                shutil.rmtree(TARGET)
            shutil.copytree(fresh, TARGET)
            print(f"wrote {TARGET}")
            return 0
        names = {p.name for p in fresh.iterdir()} | (
            {p.name for p in TARGET.iterdir() if p.name != "__pycache__"} if TARGET.exists() else set()
        )
        stale = sorted(
            n for n in names
            if not (fresh / n).exists() or not (TARGET / n).exists() or not filecmp.cmp(fresh / n, TARGET / n, shallow=False)
        )
        if stale:
            print(
                f"error: the generated Python stubs in {TARGET} are stale: {', '.join(stale)}\n"
                f"       regenerate them with: {sys.executable} clients/python/scripts/gen.py\n"
                "       (the python of a venv with clients/python/requirements-dev.txt) and commit the result",
                file=sys.stderr,
            )
            return 1
        print("the generated Python stubs are up to date")
        return 0


if __name__ == "__main__":
    sys.exit(main())
