"""The committed stubs are exactly what regenerating them from protos/ gives."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "services" / "common" / "proto"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_stubs_changes_nothing(tmp_path):
    written = _generator().generate(tmp_path)
    assert {p.name for p in written} == {p.name for p in COMMITTED.glob("*_pb2*.py*")}
    for path in written:
        assert path.read_text() == (COMMITTED / path.name).read_text(), path.name


def test_every_proto_has_stubs():
    protos = {p.stem for p in (ROOT / "protos").rglob("*.proto")}
    assert protos == {"chat", "router", "providers", "state"}
    for name in protos:
        assert (COMMITTED / f"{name}_pb2.py").exists()
        assert (COMMITTED / f"{name}_pb2_grpc.py").exists()
