"""Regenerate the committed gRPC stubs from protos/ (python scripts/gen_protos.py [OUT_DIR])."""
from __future__ import annotations

import pathlib
import re
import sys

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
DEFAULT_OUT = ROOT / "services" / "common" / "proto"
# protoc writes `from switchyard.v1 import x_pb2`; our stubs live in a sub-package.
IMPORT_FIX = (re.compile(r"^from switchyard\.v1 import", re.M),
              "from switchyard.common.proto import")


def generate(out_dir: pathlib.Path = DEFAULT_OUT) -> list[pathlib.Path]:
    """Generate *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every proto into out_dir (flat)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    tmp = out_dir / "_gen"
    tmp.mkdir(exist_ok=True)
    args = ["protoc", f"-I{PROTO_ROOT}", f"--python_out={tmp}", f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = []
    for src in sorted(tmp.rglob("*_pb2*.py*")):
        text = IMPORT_FIX[0].sub(IMPORT_FIX[1], src.read_text())
        dst = out_dir / src.name
        dst.write_text(text)
        written.append(dst)
    for p in sorted(tmp.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    tmp.rmdir()
    return written


if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    for path in generate(out):
        print(path.relative_to(out.parent) if out == DEFAULT_OUT else path)
