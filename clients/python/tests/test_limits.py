"""The server's limits as the client sees them, on extra attnd processes:
503 + Retry-After when the queue is full (and the client's retries getting
through), 504 past the server's deadline, 413 past the body limit, and the
client's own timeout.  The heavy request is a full attention over 65536
positions of 16 features on one thread (~275 GFLOP: seconds even with
AVX-512, so that it is still running when the next requests arrive)."""

import threading
import time

import pytest

import attnd
from conftest import Attnd, BUILD


def heavy(L=65536, E=16):
    # (1, L, 1, E) of small values: softmax stays finite; no numpy needed
    return attnd.Tensor([((i * 7919) % 1000) / 1000.0 for i in range(L * E)], "FP32", shape=[1, L, 1, E])


@pytest.fixture(scope="module")
def busy_server():
    if not BUILD:
        pytest.skip("ATTND_BUILD is not set: run clients/python/test.sh")
    s = Attnd("--threads", "1", "--threads-per-request", "1", "--max-queue", "1",
              "--retry-after", "1", "--max-body-bytes", "64M", "--timeout", "120")
    yield s
    s.close()


@pytest.fixture(scope="module")
def strict_server():
    if not BUILD:
        pytest.skip("ATTND_BUILD is not set: run clients/python/test.sh")
    s = Attnd("--threads", "1", "--threads-per-request", "1", "--timeout", "0.1",
              "--max-body-bytes", "16M")
    yield s
    s.close()


def test_full_queue_is_503_and_retries_get_through(busy_server):
    x = heavy()
    errors = []

    def run():
        try:
            attnd.Client(busy_server.url, retries=0, timeout=120).attention("full", x, x, x)
        except Exception as e:  # reported below
            errors.append(e)

    # one request computing, one waiting: the queue (1) is full.  Wait for
    # each state on the server's own gauges, not a fixed sleep: on a busy
    # machine the 4 MB body takes a while to arrive and decode.
    def gauge(name):
        import urllib.request
        text = urllib.request.urlopen(busy_server.url + "/metrics", timeout=10).read().decode()
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name))

    def until(what, cond):
        t0 = time.monotonic()
        while not cond():
            assert time.monotonic() - t0 < 60, f"timed out waiting for {what}"
            time.sleep(0.02)
    threads = [threading.Thread(target=run) for _ in range(2)]
    threads[0].start()
    until("the first request to run", lambda: gauge("attnd_inference_executing_request_count") >= 1)
    threads[1].start()
    until("the second request to wait", lambda: gauge("attnd_queue_depth") >= 1)
    small = [[[[1.0, 0.0]], [[0.0, 1.0]]]]
    try:
        with pytest.raises(attnd.ServiceUnavailableError) as ei:
            attnd.Client(busy_server.url, retries=0).attention("full", small, small, small)
        assert ei.value.status == 503
        assert ei.value.retry_after == 1
        assert ei.value.message
        # with retries, honouring Retry-After: 1, the same request gets through (enough of them
        # to outlast both heavy requests on a busy machine)
        t0 = time.monotonic()
        out = attnd.Client(busy_server.url, retries=120, max_backoff=5, timeout=120).attention(
            "full", small, small, small)
        assert time.monotonic() - t0 >= 0.9
        assert len(out) == 1
    finally:
        for t in threads:
            t.join()
    assert not errors, errors


def test_client_timeout_on_a_live_request(busy_server):
    x = heavy()
    t0 = time.monotonic()
    with pytest.raises(attnd.RequestTimeoutError):
        attnd.Client(busy_server.url, timeout=0.2).attention("full", x, x, x)
    assert time.monotonic() - t0 < 5
    time.sleep(2)  # let the abandoned request finish before other tests use the server


def test_server_deadline_is_504(strict_server):
    x = heavy(8192, 128)  # 12 MB, several times the 0.1 s deadline
    with pytest.raises(attnd.GatewayTimeoutError) as ei:
        attnd.Client(strict_server.url, retries=0).attention("full", x, x, x)
    assert ei.value.status == 504 and ei.value.message


def test_body_limit_is_413(strict_server):
    x = heavy(16384, 128)  # 3 x 8 MB > 16M
    for binary in (True, False):
        with pytest.raises(attnd.PayloadTooLargeError) as ei:
            attnd.Client(strict_server.url).attention("full", x, x, x, binary=binary)
        assert ei.value.status == 413 and ei.value.message
    # and the server still serves
    small = [[[[1.0, 0.0]], [[0.0, 1.0]]]]
    assert len(attnd.Client(strict_server.url).attention("full", small, small, small)) == 1
