"""Streaming sessions (the sequence extension): a client sends only the new
tokens of a sequence and the server keeps its state (key/value cache, or the
running sums of linear attention).

    seq = client.sequence("full")             # a random 63-bit id
    out1 = seq.step({"queries": q[:, :8], "keys": k[:, :8], "values": v[:, :8]})   # starts it
    out2 = seq.step({"queries": q[:, 8:9], ...}, end=True)                         # ends it

Every step is one ``POST /v2/models/{m}/infer`` with the request parameters
``sequence_id``, ``sequence_start`` (the first step), ``sequence_end`` and
``sequence_kind`` (a cross start), and the id in the ``Sequence-Id`` header too
(for load balancers that route on it).
"""

import re
import secrets
import urllib.parse
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Union

from .errors import ModelNotFoundError, ProtocolError, SequenceNotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client, InferResult

__all__ = ["Sequence", "SEQUENCE_HEADER", "new_sequence_id", "check_sequence_id"]

SEQUENCE_HEADER = "Sequence-Id"
_STRING_ID = re.compile(r"[A-Za-z0-9._:~-]{1,128}\Z")

SequenceId = Union[int, str]


def new_sequence_id() -> int:
    """A random id in 1 .. 2**63-1 (never 0, which means "not in a sequence")."""
    while True:
        n = secrets.randbits(63)
        if n:
            return n


def check_sequence_id(id: Any) -> SequenceId:
    """An id the server accepts: an integer in 1 .. 2**64-1, or a string matching
    ``[A-Za-z0-9._:~-]{1,128}`` (an integer and its decimal text name the same
    sequence)."""
    if isinstance(id, bool) or not isinstance(id, (int, str)):
        raise TypeError("a sequence id is an int or a str, not %r" % (id,))
    if isinstance(id, int):
        if not 0 < id < 1 << 64:
            raise ValueError("an integer sequence id is in 1 .. 2**64-1, not %d" % id)
        return id
    if not _STRING_ID.match(id):
        raise ValueError("a string sequence id matches [A-Za-z0-9._:~-]{1,128}, not %r" % id)
    return id


def _seq_path(model: str, id: SequenceId = None) -> str:
    from .client import _quote
    path = "/v2/models/%s/sequences" % _quote(model)
    if id is not None:
        path += "/" + urllib.parse.quote(str(check_sequence_id(id)), safe="")
    return path


def _seq_error(e: ModelNotFoundError) -> SequenceNotFoundError:
    if isinstance(e, SequenceNotFoundError):
        return e
    return SequenceNotFoundError(e.message, e.status, e.body, e.headers)


class Sequence:
    """One sequence of model ``model`` on the server of ``client``.

    ``id``: an int or a str (default: a random 63-bit integer); ``kind``:
    ``"self"`` (each step carries the new tokens of queries, keys and values) or
    ``"cross"`` (the first step carries the memory, keys and values, and
    queries; later steps only queries); ``config``: parameters sent on the
    start request only (a built-in model's config, e.g. ``{"query_dimensions":
    64}`` for ``causal_linear``).  Nothing is sent until the first :meth:`step`.

    ``length`` is the number of tokens the server holds after the last step,
    ``started`` / ``ended`` what this object knows of the sequence's life.
    Usable as a context manager: a sequence still live on exit is deleted.
    """

    def __init__(self, client: "Client", model: str, id: Optional[SequenceId] = None,
                 kind: str = "self", config: Optional[Mapping[str, Any]] = None, *,
                 started: bool = False, length: int = 0):
        if kind not in ("self", "cross"):
            raise ValueError("kind must be 'self' or 'cross', not %r" % (kind,))
        if not isinstance(model, str) or not model:
            raise ValueError("a model name is a non-empty string")
        self.client = client
        self.model = model
        self.id: SequenceId = new_sequence_id() if id is None else check_sequence_id(id)
        self.kind = kind
        self.config = dict(config or {})
        for key in self.config:
            if key.startswith("sequence_"):
                raise ValueError("config must not carry %r: the sequence sets it" % key)
        self.started = started
        self.ended = False
        self.length = length

    def __repr__(self) -> str:
        state = "ended" if self.ended else ("live" if self.started else "not started")
        return "Sequence(model=%r, id=%r, kind=%r, length=%d, %s)" % (
            self.model, self.id, self.kind, self.length, state)

    def __enter__(self) -> "Sequence":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started and not self.ended:
            try:
                self.end()
            except SequenceNotFoundError:
                pass

    @property
    def headers(self) -> Dict[str, str]:
        """The header that names this sequence (for a router that sticks on it)."""
        return {SEQUENCE_HEADER: str(self.id)}

    def step(self, inputs: Any, end: bool = False, *, parameters: Optional[Mapping[str, Any]] = None,
             **infer_options: Any) -> "InferResult":
        """Sends the next tokens (axis 1 of each input: T >= 1 of them) and returns
        the :class:`InferResult` of those rows; the first call starts the
        sequence (with ``config`` and ``kind``), ``end=True`` ends it after this
        step.  ``infer_options`` are :meth:`Client.infer`'s (binary, outputs,
        input_datatype, output_datatype, timeout, ...).  A step is sent again
        only on 503/429 (the server did not apply it), never after a lost
        connection.  Raises :class:`SequenceNotFoundError` (404: unknown or
        ended, with the server's reason), :class:`ConflictError` (409: a start
        on a live id, or a replica whose copy has another length than this
        object counts: a stale copy after a failover), :class:`PayloadTooLargeError` (413: past the longest
        sequence), :class:`ServiceUnavailableError` (503: no room for another
        sequence; ``.retry_after``), :class:`BadRequestError` (400)."""
        params: Dict[str, Any] = {}
        if not self.started:
            params.update(self.config)
            params["sequence_start"] = True
            if self.kind != "self":
                params["sequence_kind"] = self.kind
        if parameters:
            params.update(parameters)
        params["sequence_id"] = self.id
        if self.started:
            # the length this object counts: a replica with another (a stale
            # copy after a failover) refuses with 409 instead of answering
            params["attnd_expect_length"] = self.length
        if end:
            params["sequence_end"] = True
        try:
            result = self.client.infer(self.model, inputs, parameters=params, headers=self.headers,
                                       _retry_connect=False, **infer_options)
        except ModelNotFoundError as e:
            if self.started:
                self.ended = True
            raise _seq_error(e) from e
        self.started = True
        n = result.parameters.get("sequence_length")
        if isinstance(n, int) and not isinstance(n, bool):
            self.length = n
        if end or result.parameters.get("sequence_end"):
            self.ended = True
        return result

    def end(self) -> None:
        """Ends the sequence now (``DELETE``), without another step.  A no-op when
        it never started or this object already saw it end."""
        if not self.started or self.ended:
            self.ended = self.ended or self.started
            return
        try:
            self.client.delete_sequence(self.model, self.id)
        finally:
            self.ended = True

    def export(self) -> bytes:
        """The sequence's state (safetensors bytes) for :meth:`Client.restore_sequence`,
        on this server or another with the same model config.  The sequence stays
        live."""
        if not self.started:
            raise ProtocolError("sequence %r has not started: nothing to export" % (self.id,))
        return self.client.export_sequence(self.model, self.id)
