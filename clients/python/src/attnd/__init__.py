"""attnd client: attention served over the Open Inference Protocol (KServe v2 REST).

    from attnd import Client
    c = Client("http://127.0.0.1:8000")
    out = c.attention("full", queries, keys, values)

Standard library only; numpy arrays in and out when numpy is installed.
"""

from .client import Client, InferResult
from .errors import (AttndError, BadRequestError, ConflictError, ConnectError, ForbiddenError,
                     GatewayTimeoutError, HTTPError, ModelNotFoundError, PayloadTooLargeError,
                     ProtocolError, RequestTimeoutError, SequenceNotFoundError, ServerError,
                     ServiceUnavailableError, UnauthorizedError)
from .sequence import Sequence
from .tensors import HAVE_NUMPY, Tensor

__version__ = "0.1.0"

__all__ = [
    "Client", "InferResult", "Sequence", "Tensor", "HAVE_NUMPY",
    "AttndError", "ConnectError", "RequestTimeoutError", "ProtocolError", "HTTPError",
    "BadRequestError", "UnauthorizedError", "ForbiddenError", "ModelNotFoundError",
    "ConflictError", "SequenceNotFoundError", "PayloadTooLargeError", "ServerError",
    "ServiceUnavailableError", "GatewayTimeoutError",
]
