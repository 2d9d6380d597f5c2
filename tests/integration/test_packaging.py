"""The installed distribution exposes one import package, `switchyard`, and nothing named
`services` (the folder it is built from)."""
from __future__ import annotations

import pathlib
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_wheel_holds_only_the_switchyard_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("switchyard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"switchyard"}
    # every folder of services/ with code is a package in the wheel, data files included
    for init in (ROOT / "services").rglob("__init__.py"):
        rel = init.relative_to(ROOT / "services").as_posix()
        assert f"switchyard/{rel}" in names
    assert "switchyard/examples/plano_config.yaml" in names
    assert any(n.startswith("switchyard/state/migrations/") and n.endswith(".sql") for n in names)


def test_import_name_is_switchyard_outside_the_source_tree(tmp_path):
    code = ("import importlib.util, switchyard.edge.app, switchyard.cli;"
            "print(importlib.util.find_spec('services') is None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "True"
    run = subprocess.run([sys.executable, "-m", "switchyard", "check", "--config",
                          str(ROOT / "services" / "examples" / "plano_config.yaml")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and ": OK" in run.stdout
