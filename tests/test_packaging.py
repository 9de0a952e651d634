"""The built distribution: one top-level import name, ``wgops``, beside other distributions.

A wheel is built from this checkout and installed (not editable) into a fresh virtual
environment next to python-daemon, whose top-level package is ``daemon``: both import, and
neither overwrites the other. The fresh environment borrows only the third-party
dependencies of the development one (appended to its path), never its wgops.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([*PIP, "wheel", "--no-deps", "-w", str(out), str(ROOT)], check=True,
                   capture_output=True, timeout=300)
    (found,) = out.glob("wgops-*.whl")
    return found


def test_the_wheel_has_one_top_level_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"wgops"}
    for module in ("wgops/store/migrations/m0001_initial.py", "wgops/daemon/scheduler.py",
                   "wgops/console/console.tcss", "wgops/examples/bands.yaml", "wgops/py.typed",
                   "wgops/__main__.py"):
        assert module in names


@pytest.mark.slow
def test_installed_next_to_python_daemon_both_import(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True,
                   timeout=120)
    python = env_dir / "bin" / "python"
    downloads = tmp_path / "downloads"
    subprocess.run([*PIP, "download", "--no-deps", "-d", str(downloads), "python-daemon"],
                   check=True, capture_output=True, timeout=300)
    (daemon_wheel,) = downloads.glob("python_daemon-*")
    subprocess.run([*PIP, "--python", str(python), "install", "--no-deps", str(wheel),
                    str(daemon_wheel)], check=True, capture_output=True, timeout=300)
    site = Path(subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        text=True).strip())
    assert (site / "daemon" / "__init__.py").read_text() != ""
    assert not (site / "store").exists() and not (site / "console").exists()
    # the dependencies (peewee, aio-pika, ...) come from the development environment
    (site / "zz-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = ("import daemon, wgops, wgops.daemon.protocol, wgops.store.document;"
             "assert daemon.DaemonContext;"
             f"assert wgops.__file__.startswith({str(site)!r}), wgops.__file__;"
             "print(wgops.__version__)")
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                         timeout=120, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    help_out = subprocess.run([str(python), "-m", "wgops", "--help"], capture_output=True,
                              text=True, timeout=120, cwd=str(tmp_path))
    assert help_out.returncode == 0 and "wgops" in help_out.stdout, help_out.stderr
