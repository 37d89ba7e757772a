"""Tensors on the wire: JSON ``data`` arrays and the binary tensor data extension.

Works with the standard library alone; when numpy is importable, numpy arrays
are accepted as inputs and returned as outputs.
"""

import array
import struct
import sys
from typing import Any, Iterable, List, Optional, Sequence, Tuple

try:  # numpy is optional
    import numpy as _np
except ImportError:  # pragma: no cover - exercised by the no-numpy test run
    _np = None

HAVE_NUMPY = _np is not None

# datatype -> (struct/array code, bytes per element)
DATATYPES = {
    "BOOL": ("?", 1),
    "UINT8": ("B", 1),
    "UINT16": ("H", 2),
    "UINT32": ("I", 4),
    "UINT64": ("Q", 8),
    "INT8": ("b", 1),
    "INT16": ("h", 2),
    "INT32": ("i", 4),
    "INT64": ("q", 8),
    "FP16": ("e", 2),
    "BF16": ("bf16", 2),  # Triton's extension: the top 16 bits of a float32
    "FP32": ("f", 4),
    "FP64": ("d", 8),
}

# Untyped Python lists become FP32, BOOL when every element is a bool, or the
# datatype the well-known input names of attnd's mechanisms take.
NAME_HINTS = {
    "query_lengths": "INT64",
    "key_lengths": "INT64",
    "attn_mask": "BOOL",
    "mask": "BOOL",
    "input_mask": "BOOL",
}

_LITTLE = sys.byteorder == "little"


class Tensor:
    """A tensor without numpy: ``shape``, ``datatype`` and flat row-major ``data``.

    Also used to give an input an explicit datatype:
    ``Tensor([3, 5], "INT64")`` or ``Tensor(flat, "FP32", shape=[2, 2])``.
    """

    __slots__ = ("name", "shape", "datatype", "data")

    def __init__(self, data: Any, datatype: Optional[str] = None,
                 shape: Optional[Sequence[int]] = None, name: Optional[str] = None):
        if shape is None:
            flat, shape = flatten(data)
        else:
            flat, _ = flatten(data)
            if _numel(shape) != len(flat):
                raise ValueError("shape %s holds %d elements, data has %d"
                                 % (list(shape), _numel(shape), len(flat)))
        if datatype is None:
            datatype = guess_datatype(name, flat)
        datatype = datatype.upper()
        if datatype not in DATATYPES:
            raise ValueError("unsupported datatype %r" % datatype)
        self.name = name
        self.shape = [int(d) for d in shape]
        self.datatype = datatype
        self.data = _normalise(datatype, flat)

    @classmethod
    def _of(cls, name: Optional[str], datatype: str, shape: List[int], data: list) -> "Tensor":
        t = cls.__new__(cls)
        t.name, t.datatype, t.shape, t.data = name, datatype, shape, data
        return t

    def tolist(self) -> Any:
        """The data as nested lists of the tensor's shape."""
        return nest(self.data, self.shape)

    def numel(self) -> int:
        return _numel(self.shape)

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tensor):
            return NotImplemented
        return (self.shape == other.shape and self.datatype == other.datatype
                and to_bytes(self.datatype, self.data) == to_bytes(other.datatype, other.data))

    def __repr__(self) -> str:
        head = list(self.data[:6])
        more = ", ..." if len(self.data) > 6 else ""
        return "Tensor(name=%r, datatype=%r, shape=%r, data=%r%s)" % (
            self.name, self.datatype, self.shape, head, more)


def _numel(shape: Iterable[int]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def flatten(value: Any) -> Tuple[list, List[int]]:
    """Nested lists/tuples (or array.array, a numpy array) -> (flat list, shape)."""
    if isinstance(value, array.array):
        return value.tolist(), [len(value)]
    if isinstance(value, (bytes, bytearray, str)):
        raise TypeError("cannot make a tensor of %s" % type(value).__name__)
    if not isinstance(value, (list, tuple)):
        if HAVE_NUMPY and isinstance(value, _np.ndarray):
            return value.ravel().tolist(), list(value.shape)
        return [value], []
    return _finish_flatten(value)


def _finish_flatten(value: Any) -> Tuple[list, List[int]]:
    shape: List[int] = []
    level: List[Any] = [value]
    while level and isinstance(level[0], (list, tuple)):
        n = len(level[0])
        nxt: List[Any] = []
        for item in level:
            if not isinstance(item, (list, tuple)) or len(item) != n:
                raise ValueError("ragged nested list: not a tensor")
            nxt.extend(item)
        shape.append(n)
        level = nxt
    for x in level:
        if isinstance(x, (list, tuple)):
            raise ValueError("ragged nested list: not a tensor")
    return level, shape


def nest(flat: Sequence[Any], shape: Sequence[int]) -> Any:
    """Flat row-major data -> nested lists of `shape`."""
    flat = list(flat)
    if not shape:
        return flat[0] if flat else None
    for d in reversed(shape[1:]):
        flat = [flat[i:i + d] for i in range(0, len(flat), d)] if d else [[] for _ in range(len(flat))]
    return flat


def guess_datatype(name: Optional[str], flat: Sequence[Any]) -> str:
    if flat and all(isinstance(x, bool) for x in flat):
        return "BOOL"
    if name in NAME_HINTS:
        return NAME_HINTS[name]
    return "FP32"


# ---- 16-bit floats without numpy ----


def _f16_pack(vals: Sequence[float]) -> bytes:
    """FP16, nearest even; beyond FP16's range an infinity (struct refuses those)."""
    try:
        return struct.pack("<%de" % len(vals), *vals)
    except OverflowError:
        out = bytearray()
        for v in vals:
            try:
                out += struct.pack("<e", v)
            except OverflowError:
                out += struct.pack("<e", float("inf") if v > 0 else float("-inf"))
        return bytes(out)


def _f32_bits(v: float) -> int:
    try:
        return struct.unpack("<I", struct.pack("<f", v))[0]
    except OverflowError:  # beyond float32: an infinity
        return 0x7f800000 if v > 0 else 0xff800000


def _bf16_pack(vals: Sequence[float]) -> bytes:
    out = array.array("H")
    for v in vals:
        u = _f32_bits(v)
        out.append((u >> 16) | 0x40 if (u & 0x7fffffff) > 0x7f800000 else ((u + 0x7fff + ((u >> 16) & 1)) >> 16) & 0xffff)
    if not _LITTLE:
        out.byteswap()
    return out.tobytes()


def _bf16_unpack(raw: bytes) -> list:
    h = array.array("H")
    h.frombytes(raw)
    if not _LITTLE:
        h.byteswap()
    n = len(h)
    return list(struct.unpack("<%df" % n, struct.pack("<%dI" % n, *(x << 16 for x in h))))


def _normalise(datatype: str, flat: Sequence[Any]) -> list:
    """Python values of the datatype (FP32 rounded to float32, FP16 and BF16
    to theirs, nearest even)."""
    if datatype == "BOOL":
        return [bool(x) for x in flat]
    if datatype == "BF16":
        return _bf16_unpack(_bf16_pack([float(x) for x in flat]))
    if datatype == "FP16":
        vals = [float(x) for x in flat]
        return list(struct.unpack("<%de" % len(vals), _f16_pack(vals)))
    code = DATATYPES[datatype][0]
    if code in "efd":
        vals = [float(x) for x in flat]
        if code in "ef":  # round to the wire precision
            vals = list(struct.unpack("<%d%s" % (len(vals), code), struct.pack("<%d%s" % (len(vals), code), *vals)))
        return vals
    return [int(x) for x in flat]


def to_bytes(datatype: str, flat: Sequence[Any]) -> bytes:
    """Little-endian raw bytes of flat data (BOOL: one byte each)."""
    code, _ = DATATYPES[datatype]
    if datatype == "BF16":
        return _bf16_pack(flat)
    if datatype == "FP16":
        return _f16_pack(flat)
    if code == "?":
        return struct.pack("<%d%s" % (len(flat), code), *flat)
    arr = array.array(code, flat)
    if arr.itemsize != DATATYPES[datatype][1]:  # exotic platform: fall back
        return struct.pack("<%d%s" % (len(flat), code), *flat)
    if not _LITTLE:
        arr.byteswap()
    return arr.tobytes()


def from_bytes(datatype: str, raw: bytes) -> list:
    code, size = DATATYPES[datatype]
    if len(raw) % size:
        raise ValueError("%d bytes is not a whole number of %s elements" % (len(raw), datatype))
    n = len(raw) // size
    if datatype == "BF16":
        return _bf16_unpack(raw)
    if code == "?":
        return [b != 0 for b in raw]
    if code == "e":
        return list(struct.unpack("<%de" % n, raw))
    arr = array.array(code)
    if arr.itemsize != size:
        return list(struct.unpack("<%d%s" % (n, code), raw))
    arr.frombytes(raw)
    if not _LITTLE:
        arr.byteswap()
    return arr.tolist()


# ---- numpy ----

_NP_TO_WIRE = {
    "bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP32",
}
_WIRE_TO_NP = {
    "BOOL": "?", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
    "BF16": "<u2",  # numpy has no bfloat16: the bits, widened to float32 on output
}

# What an input may be converted to before it is sent (infer's input_datatype).
HALF_DATATYPES = ("FP16", "BF16")


def _np_bf16_bits(arr: Any) -> Any:
    """float32 array -> BF16 bits (uint16), nearest even; NaN stays NaN."""
    u = _np.ascontiguousarray(arr, dtype="<f4").view("<u4")
    r = ((u + _np.uint32(0x7fff) + ((u >> 16) & 1)) >> 16).astype("<u2")
    nan = (u & 0x7fffffff) > 0x7f800000
    if nan.any():
        r[nan] = ((u[nan] >> 16) | 0x40).astype("<u2")
    return r


def _np_bf16_value(bits: Any) -> Any:
    return (_np.asarray(bits, dtype="<u2").astype("<u4") << 16).view("<f4")


def is_array(value: Any) -> bool:
    return HAVE_NUMPY and isinstance(value, (_np.ndarray, _np.generic))


class WireTensor:
    """One input ready to send: header fields plus JSON data or raw bytes."""

    __slots__ = ("name", "datatype", "shape", "_flat", "_np")

    def __init__(self, name: str, value: Any, as_datatype: Optional[str] = None):
        """``as_datatype`` ("FP16", "BF16"): send a floating-point input in that
        format (rounded to nearest even); other inputs are left alone."""
        self.name = name
        self._flat = None
        self._np = None
        self._init(value)
        if as_datatype is not None:
            as_datatype = as_datatype.upper()
            if as_datatype not in HALF_DATATYPES + ("FP32",):
                raise ValueError("input_datatype must be FP32, FP16 or BF16, not %r" % as_datatype)
            if self.datatype in ("FP16", "BF16", "FP32", "FP64") and self.datatype != as_datatype:
                self._convert(as_datatype)

    def _convert(self, dt: str) -> None:
        if self._np is not None:
            f = self._np if self.datatype != "BF16" else _np_bf16_value(self._np)
            if dt == "FP16":
                self._np = _np.ascontiguousarray(f, dtype="<f2")
            elif dt == "BF16":
                self._np = _np_bf16_bits(f)
            else:
                self._np = _np.ascontiguousarray(f, dtype="<f4")
        else:
            self._flat = _normalise(dt, self._flat)
        self.datatype = dt

    def _init(self, value: Any) -> None:
        name = self.name
        if isinstance(value, Tensor):
            self.datatype, self.shape, self._flat = value.datatype, list(value.shape), value.data
        elif is_array(value) or (HAVE_NUMPY and hasattr(value, "__array__")
                                 and not isinstance(value, (list, tuple))):
            arr = _np.asarray(value)
            wire = _NP_TO_WIRE.get(arr.dtype.name)
            if wire is None:
                raise TypeError("input %r: numpy dtype %s has no protocol datatype" % (name, arr.dtype))
            if arr.dtype.kind == "f" and wire == "FP32":
                # attnd computes in float32; float64 input arrays are rounded once here
                arr = arr.astype("<f4", copy=False)
            self.datatype, self.shape = wire, [int(d) for d in arr.shape]
            self._np = _np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        else:
            t = Tensor(value, name=name)
            self.datatype, self.shape, self._flat = t.datatype, t.shape, t.data

    def json_data(self) -> list:
        if self._np is not None:
            if self.datatype == "BF16":
                return _np_bf16_value(self._np).astype(_np.float64).ravel().tolist()
            if self.datatype == "FP16":
                return self._np.astype(_np.float64).ravel().tolist()
            return self._np.ravel().tolist()
        return list(self._flat)

    def raw(self) -> bytes:
        if self._np is not None:
            return self._np.tobytes()
        return to_bytes(self.datatype, self._flat)


def make_output(name: str, datatype: str, shape: Sequence[int], *, flat: Optional[list] = None,
                raw: Optional[memoryview] = None, use_numpy: bool = True) -> Any:
    """Build the value the client returns for one output."""
    shape = [int(d) for d in shape]
    if datatype not in DATATYPES:
        raise ValueError("output %r has unsupported datatype %r" % (name, datatype))
    if use_numpy and HAVE_NUMPY:
        if datatype == "BF16":  # numpy has no bfloat16: the values as float32
            if raw is not None:
                arr = _np_bf16_value(_np.frombuffer(raw, dtype="<u2"))
            else:
                arr = _np_bf16_value(_np_bf16_bits(_np.array(flat, dtype=_np.float32)))
        elif raw is not None:
            arr = _np.frombuffer(raw, dtype=_WIRE_TO_NP[datatype])
        else:
            arr = _np.array(flat, dtype=_WIRE_TO_NP[datatype].replace("<", "="))
        if arr.size != _numel(shape):
            raise ValueError("output %r: %d elements for shape %s" % (name, arr.size, shape))
        arr = arr.reshape(shape)
        if arr.dtype.byteorder not in ("=", "|") and not (arr.dtype.byteorder == "<" and _LITTLE):
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr
    if raw is not None:
        data = from_bytes(datatype, bytes(raw))
    else:
        data = _normalise(datatype, flat or [])
    if len(data) != _numel(shape):
        raise ValueError("output %r: %d elements for shape %s" % (name, len(data), shape))
    return Tensor._of(name, datatype, shape, data)
