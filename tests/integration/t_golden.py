"""Every golden case through HTTP, with JSON and with binary tensors, and
through the built-in model of its type configured by the request's
parameters.  Each result must equal `attn run`'s output bit for bit (JSON
carries NaN without its payload, so there any NaN matches any NaN)."""
import json

import numpy as np

from harness import CTX, add_test, check, same_bits

SERVER = {}  # the shared server, started by main.py


def _srv():
    return SERVER["golden"]


def _check_output(case, st, body, nan_any, how):
    check(st == 200, f"{how}: status {st}: {body[:400] if isinstance(body, bytes) else ''!r}")
    got = body.get("output")
    check(got is not None, f"{how}: no output named 'output'")
    check(got.shape == case.expected.shape, f"{how}: shape {got.shape}, expected {case.expected.shape}")
    if not same_bits(got, case.expected, nan_any=nan_any):
        diff = np.abs(got.astype(np.float64) - case.expected.astype(np.float64))
        raise AssertionError(f"{how}: output differs from attn run (max |diff| {np.nanmax(diff):.3g})")


def _json_case(case):
    def t():
        st, h, body = _srv().infer(case.id, case.inputs)
        _check_output(case, st, body, True, "JSON")
        check(h.get("content-type") == "application/json", "JSON response content type")
    return t


def _binary_case(case):
    def t():
        st, h, body = _srv().infer(case.id, case.inputs, binary=True)
        _check_output(case, st, body, False, "binary")
        check("inference-header-content-length" in h, "binary response without Inference-Header-Content-Length")
    return t


def _builtin_case(case):
    def t():
        params = {k: v for k, v in case.config.items()}
        # a server without a repository: a case named like its type would shadow the built-in
        st, h, body = SERVER["builtin"].infer(case.type, case.inputs, binary=True, params=params)
        _check_output(case, st, body, False, f"built-in {case.type} with parameters")
        # the same config given as one JSON string, the Triton client way
        st, h, body = SERVER["builtin"].infer(case.type, case.inputs, params={"config": json.dumps(case.config)})
        _check_output(case, st, body, True, f"built-in {case.type} with parameters.config")
    return t


def register(cases, builtin_types):
    for c in cases:
        add_test(f"golden_json[{c.id}]", _json_case(c))
        add_test(f"golden_binary[{c.id}]", _binary_case(c))
        if c.type in builtin_types:
            add_test(f"golden_builtin[{c.id}]", _builtin_case(c))
    if cases:
        first = cases[0]

        def nested():
            st, h, body = _srv().infer(first.id, first.inputs, nested=True)
            _check_output(first, st, body, True, "nested JSON data")
        add_test(f"golden_nested_json[{first.id}]", nested)
