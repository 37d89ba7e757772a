"""Read and write safetensors files with numpy only (the safetensors package is not packaged here).

Layout: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
then the raw little-endian data. Tensors are written in the order given, packed back to back.
"""
import json
import struct

import numpy as np

_DTYPES = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8"), "BOOL": np.dtype("?")}
_NAMES = {v: k for k, v in _DTYPES.items()}


def read(path):
    """Return (ordered dict name -> numpy array, raw header dict)."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dt = _DTYPES[meta["dtype"]]
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(blob[base + a:base + b], dtype=dt).reshape(meta["shape"]).copy()
    return out, header


# the order the safetensors library itself writes: larger dtypes first, then by name
_RANK = {"I64": 0, "F32": 1, "BOOL": 2}


def encode(tensors, metadata=None):
    """tensors: list of (name, numpy array). Returns the file's bytes, laid out as the safetensors
    library lays them out (sorted by dtype size then name, header padded with spaces to 8 bytes)."""
    items = []
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        dt = arr.dtype.newbyteorder("<") if arr.dtype.kind in "fi" else arr.dtype
        if dt not in _NAMES:
            raise ValueError("unsupported dtype %s for %s" % (arr.dtype, name))
        items.append((_RANK[_NAMES[dt]], name, arr.astype(dt, copy=False)))
    items.sort(key=lambda t: (t[0], t[1]))
    header = {"__metadata__": metadata} if metadata else {}
    chunks = []
    off = 0
    for _, name, arr in items:
        data = arr.tobytes()
        header[name] = {"dtype": _NAMES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [off, off + len(data)]}
        chunks.append(data)
        off += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(chunks)


def write(path, tensors, metadata=None):
    with open(path, "wb") as f:
        f.write(encode(tensors, metadata))
