"""Generate the Python stubs for ``vsgw.v1`` next to the contract (they are committed, and a
test regenerates them to check they match). Usage: ``python -m proto.generate``."""

from __future__ import annotations

from pathlib import Path
import re

from grpc_tools import protoc
import grpc_tools

ROOT = Path(__file__).resolve().parent
PROTO = "vsgw/v1/vsgw.proto"


def generate(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    code = protoc.main(["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}",
                        f"--grpc_python_out={out}", str(ROOT / PROTO)])
    if code != 0:
        raise RuntimeError(f"protoc failed with {code}")
    files = sorted((out / "vsgw" / "v1").glob("vsgw_pb2*"))
    for path in files:  # the stubs live in a package: make their cross-import relative
        text = re.sub(r"^from vsgw\.v1 import vsgw_pb2", "from . import vsgw_pb2", path.read_text(), flags=re.M)
        path.write_text(text)
    return files


if __name__ == "__main__":
    for f in generate(ROOT):
        print(f)
