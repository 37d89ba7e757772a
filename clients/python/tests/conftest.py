"""Fixtures for the client tests: a live attnd started by test.sh (ATTND_URL,
keys, golden cases prepared in ATTND_GOLDEN).

With ATTND_TEST_NO_NUMPY=1, numpy is made unimportable before the client is
imported, so the whole suite runs on the standard library alone.
"""

import importlib.abc
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
NO_NUMPY = os.environ.get("ATTND_TEST_NO_NUMPY") == "1"


class _BlockNumpy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            raise ImportError("numpy is blocked for this test run")
        return None


if NO_NUMPY:
    sys.meta_path.insert(0, _BlockNumpy())
    for mod in [m for m in sys.modules if m == "numpy" or m.startswith("numpy.")]:
        del sys.modules[mod]

sys.path.insert(0, SRC)

import pytest  # noqa: E402

import attnd  # noqa: E402
from attnd.tensors import Tensor, from_bytes  # noqa: E402

if NO_NUMPY:
    assert not attnd.HAVE_NUMPY, "numpy should be blocked"


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.skip("%s is not set: run clients/python/test.sh BUILD_DIR" % name, allow_module_level=True)
    return value


URL = os.environ.get("ATTND_URL", "")
API_KEY = os.environ.get("ATTND_API_KEY")
ADMIN_KEY = os.environ.get("ATTND_ADMIN_KEY")
GOLDEN = os.environ.get("ATTND_GOLDEN", "")
BUILD = os.environ.get("ATTND_BUILD", "")

# ---- safetensors (tests only) ----

ST_TO_WIRE = {"F32": "FP32", "F64": "FP64", "BOOL": "BOOL", "I64": "INT64", "I32": "INT32",
              "U8": "UINT8", "I8": "INT8"}


def read_safetensors(path):
    """{name: (datatype, shape, raw little-endian bytes)}, in file order of offsets."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = (ST_TO_WIRE[info["dtype"]], list(info["shape"]), blob[base + a:base + b])
    return out


def as_tensor(entry, name=None):
    dt, shape, raw = entry
    return Tensor(from_bytes(dt, raw), dt, shape=shape, name=name)


def as_native(entry):
    """numpy array when numpy is present, else a Tensor."""
    dt, shape, raw = entry
    if attnd.HAVE_NUMPY:
        import numpy as np
        from attnd.tensors import _WIRE_TO_NP
        return np.frombuffer(raw, dtype=_WIRE_TO_NP[dt]).reshape(shape).copy()
    return as_tensor(entry)


def raw_of(value):
    """Little-endian bytes of an output (numpy array or Tensor) and its shape."""
    if isinstance(value, Tensor):
        from attnd.tensors import to_bytes
        return to_bytes(value.datatype, value.data), list(value.shape)
    import numpy as np
    arr = np.ascontiguousarray(value)
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes(), list(arr.shape)


def floats_of(raw):
    return struct.unpack("<%df" % (len(raw) // 4), raw)


def builtin_types():
    """The types `attn list` marks [built-in] (parameter-free: served by type name)."""
    import re
    import subprocess
    out = subprocess.run([os.path.join(BUILD, "attn"), "list"], capture_output=True, text=True,
                         check=True).stdout
    return {m.group(1) for m in re.finditer(r"^(\w+)\b.*\[built-in\]$", out, re.M)}


def golden_cases():
    if not GOLDEN or not os.path.isdir(GOLDEN):
        return []
    return sorted(d for d in os.listdir(GOLDEN) if os.path.isfile(os.path.join(GOLDEN, d, "case.json")))


def load_case(case_id):
    d = os.path.join(GOLDEN, case_id)
    with open(os.path.join(d, "case.json")) as f:
        case = json.load(f)
    with open(os.path.join(d, "model", "config.json")) as f:
        model_config = json.load(f)
    inputs = read_safetensors(os.path.join(d, "inputs.safetensors"))
    out = read_safetensors(os.path.join(d, "out.safetensors"))
    io = read_safetensors(os.path.join(d, "io.safetensors"))
    return {
        "dir": d, "case": case, "model_config": model_config, "inputs": inputs,
        "attn_run": next(iter(out.values())), "expected": io[case["output"]],
        "has_weights": os.path.exists(os.path.join(d, "model", "weights.safetensors")),
    }


@pytest.fixture(scope="session")
def url():
    return env("ATTND_URL")


@pytest.fixture
def client(url):
    c = attnd.Client(url, api_key=API_KEY, admin_key=ADMIN_KEY, timeout=30)
    yield c
    c.close()


@pytest.fixture
def pure_client(url):
    """Standard-library results (Tensor), whether numpy is present or not."""
    c = attnd.Client(url, api_key=API_KEY, admin_key=ADMIN_KEY, timeout=30, numpy=False)
    yield c
    c.close()


class Attnd:
    """An extra attnd with its own flags (limits, queue), on a free port."""

    def __init__(self, *flags):
        import re
        import subprocess
        import tempfile
        import time
        binary = os.environ.get("ATTND_BIN") or os.path.join(BUILD, "attnd")
        self.log = tempfile.NamedTemporaryFile(prefix="attnd-", suffix=".log", delete=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATTND_")}
        self.proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", "0", *flags],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 10
        self.url = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(self.log.name) as f:
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.url = "http://127.0.0.1:%s" % m.group(1)
                if attnd.Client(self.url).is_ready():
                    return
            time.sleep(0.05)
        self.close()
        with open(self.log.name) as f:
            raise RuntimeError("extra attnd did not start: " + f.read())

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        os.unlink(self.log.name)
