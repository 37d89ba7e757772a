"""Tensor encoding and decoding without a server."""

import math
import struct

import pytest

import attnd
from attnd.tensors import Tensor, WireTensor, flatten, from_bytes, make_output, nest, to_bytes


def test_flatten_and_nest_round_trip():
    value = [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]
    flat, shape = flatten(value)
    assert shape == [1, 2, 3] and flat == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert nest(flat, shape) == value
    assert flatten([]) == ([], [0])


def test_ragged_lists_are_rejected():
    with pytest.raises(ValueError):
        Tensor([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError):
        Tensor([[1.0, 2.0], 3.0])


def test_datatype_guesses():
    assert Tensor([[True, False]]).datatype == "BOOL"
    assert Tensor([1, 2]).datatype == "FP32"
    assert Tensor([1, 2], name="key_lengths").datatype == "INT64"
    assert Tensor([[1, 0]], name="attn_mask").data == [True, False]
    assert Tensor([3, 5], "int32").datatype == "INT32"
    with pytest.raises(ValueError):
        Tensor([1.0], "FP8")


def test_fp32_is_rounded_to_float32():
    t = Tensor([0.1])
    assert t.data[0] == struct.unpack("<f", struct.pack("<f", 0.1))[0]


def test_bytes_are_little_endian():
    assert to_bytes("FP32", [1.0, -2.0]) == bytes.fromhex("0000803f000000c0")
    assert to_bytes("INT64", [1, -1]) == bytes.fromhex("0100000000000000ffffffffffffffff")
    assert to_bytes("BOOL", [True, False]) == b"\x01\x00"
    assert from_bytes("INT32", bytes.fromhex("feffffff")) == [-2]
    assert from_bytes("BOOL", b"\x00\x02") == [False, True]
    with pytest.raises(ValueError):
        from_bytes("FP32", b"\0\0\0")


def test_wire_tensor_from_lists():
    w = WireTensor("x", [[1.5, float("nan")]])
    assert (w.datatype, w.shape) == ("FP32", [1, 2])
    assert w.raw()[:4] == struct.pack("<f", 1.5)
    assert math.isnan(w.json_data()[1])


def test_outputs_without_numpy():
    t = make_output("o", "FP32", [2, 1], raw=memoryview(to_bytes("FP32", [1.0, 2.0])), use_numpy=False)
    assert isinstance(t, Tensor) and t.tolist() == [[1.0], [2.0]]
    t = make_output("o", "FP32", [2], flat=[1e-46, 3.4e38], use_numpy=False)
    assert t.data[0] == 0.0 or t.data[0] < 1e-44  # float32 rounding applied
    with pytest.raises(ValueError):
        make_output("o", "FP32", [3], flat=[1.0], use_numpy=False)


@pytest.mark.skipif(not attnd.HAVE_NUMPY, reason="numpy not importable in this run")
def test_numpy_in_and_out():
    import numpy as np
    a = np.arange(6, dtype=np.float64).reshape(2, 3) / 3
    w = WireTensor("x", a)
    assert (w.datatype, w.shape) == ("FP32", [2, 3])
    assert w.raw() == a.astype("<f4").tobytes()
    assert WireTensor("m", np.array([True, False])).datatype == "BOOL"
    assert WireTensor("l", np.array([3, 4], dtype=np.int32)).datatype == "INT32"
    big = np.arange(4, dtype=">f4")  # big-endian input goes out little-endian
    assert WireTensor("b", big).raw() == np.arange(4, dtype="<f4").tobytes()
    out = make_output("o", "FP32", [2, 2], raw=memoryview(bytearray(np.arange(4, dtype="<f4").tobytes())))
    assert out.dtype == np.float32 and out.shape == (2, 2) and out[1, 1] == 3
    out[0, 0] = 9  # writable
    with pytest.raises(TypeError):
        WireTensor("c", np.array([1 + 2j]))


def test_no_numpy_run_really_has_no_numpy():
    import os
    import sys
    if os.environ.get("ATTND_TEST_NO_NUMPY") == "1":
        assert "numpy" not in sys.modules
        assert not attnd.HAVE_NUMPY
        with pytest.raises(ImportError):
            attnd.Client("http://127.0.0.1:1", numpy=True)
    else:
        assert attnd.HAVE_NUMPY
