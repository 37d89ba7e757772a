"""The README's example runs as written (with this run's numpy setting), from
the source tree and from an installed copy of the package."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import NO_NUMPY, SRC

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)

BLOCK = """
import importlib.abc, sys
class _B(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            raise ImportError("numpy is blocked")
sys.meta_path.insert(0, _B())
"""


def readme_example():
    with open(os.path.join(PKG, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Example", 1)[1]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "README has no python example"
    return m.group(1)


def run_example(tmp_path, path_entry):
    script = tmp_path / "example.py"
    script.write_text((BLOCK if NO_NUMPY else "") + readme_example())
    env = dict(os.environ, PYTHONPATH=path_entry, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path))


def check_output(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "{'live': True, 'ready': True}"
    assert lines[1].startswith("[[[[12.68941")
    assert lines[2].startswith("local3 ")
    assert lines[3].startswith("404 ") and len(lines[3]) > 4


def test_readme_example_runs(tmp_path):
    check_output(run_example(tmp_path, SRC))


def test_readme_example_from_an_installed_package(tmp_path):
    """pip installs the package (pyproject.toml) offline; the example runs from there."""
    pip_ok = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0
    try:
        import setuptools  # noqa: F401
        import wheel  # noqa: F401
    except ImportError:
        pip_ok = False
    if not pip_ok:
        pytest.skip("pip/setuptools/wheel not installed (python3-pip python3-setuptools python3-wheel)")
    src = tmp_path / "src"
    shutil.copytree(PKG, src, ignore=shutil.ignore_patterns("tests", "__pycache__", "*.egg-info", "build"))
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                           "--no-build-isolation", "--disable-pip-version-check", "-q",
                           "--target", str(target), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / "attnd" / "client.py").exists()
    assert (target / "attnd" / "py.typed").exists()
    proc = run_example(tmp_path, str(target))
    check_output(proc)
