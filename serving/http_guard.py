"""The HTTP edge of the decision service: body size limit, JSON error bodies, and a log that keeps no PII.

* :class:`RequestGuard` (ASGI middleware) answers 413 for bodies over the limit before they reach the
  app, and rewrites BentoML's error bodies to one JSON object ``{"error": "...", "detail": [...]}``
  whose message names the offending field (BentoML wraps some in a list and names only the model).
* :class:`MaskingFilter` keeps raw identifiers out of the server log: BentoML logs a rejected request
  with its traceback, and pydantic's message quotes the input (a phone number, an e-mail). Client
  errors become one masked warning line; other tracebacks are masked too.
"""

from __future__ import annotations

import json
import logging
import traceback

from features.privacy import mask_text

__all__ = ["BENTOML_ERROR_LOGGER", "MAX_BODY_BYTES", "MaskingFilter", "RequestGuard", "install_log_masking"]

MAX_BODY_BYTES = 64 * 1024
BENTOML_ERROR_LOGGER = "bentoml._internal.server.http_app"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _json_response(status: int, body: dict) -> tuple[dict, dict]:
    payload = json.dumps(body).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]}
    return start, {"type": "http.response.body", "body": payload, "more_body": False}


def error_message(body) -> dict:
    """One JSON object with an ``error`` that names each offending field (``loc: msg``)."""
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
        body = body[0]
    if not isinstance(body, dict):
        return {"error": str(body)}
    detail = body.get("detail")
    if isinstance(detail, list) and detail:
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc", ()) if x != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        if parts:
            body = {**body, "error": "invalid request: " + "; ".join(parts)}
    return body if "error" in body else {"error": json.dumps(body)}


class RequestGuard:
    """ASGI middleware: 413 for oversized bodies; error responses rewritten to one JSON object."""

    def __init__(self, app, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("method") in _BODY_METHODS:
            receive = await self._limited(scope, receive, send)
            if receive is None:
                return
        await self.app(scope, receive, self._rewriting(send))

    async def _reject(self, send, status: int, message: str) -> None:
        start, body = _json_response(status, {"error": message})
        await send(start)
        await send(body)

    async def _limited(self, scope, receive, send):
        """The ``receive`` the app may use, or None after a 413/400.

        A declared length within the limit needs no look at the body (the HTTP parser delivers exactly
        that many bytes), so ``receive`` passes through; a body without one (chunked) is read up to the
        limit and replayed.
        """
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await self._reject(send, 400, f"invalid content-length header {declared[:32]!r}")
                return None
            if size > self.max_body_bytes:
                await self._reject(send, 413, f"request body of {size} bytes exceeds the limit of "
                                              f"{self.max_body_bytes} bytes")
                return None
            return receive
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body_bytes:
                await self._reject(send, 413, f"request body exceeds the limit of {self.max_body_bytes} bytes")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    @staticmethod
    def _rewriting(send):
        held: dict = {}
        parts: list[bytes] = []

        async def wrapped(message):
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held["start"] = message
                return
            if "start" in held and message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                raw = b"".join(parts)
                try:
                    payload = json.dumps(error_message(json.loads(raw))).encode()
                except (ValueError, UnicodeDecodeError):
                    payload = json.dumps({"error": raw.decode("utf-8", "replace")[:500]}).encode()
                start = held.pop("start")
                headers = [(k, v) for k, v in start.get("headers", [])
                           if k.lower() not in (b"content-length", b"content-type")]
                headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": payload, "more_body": False})
                return
            await send(message)

        return wrapped


def _client_error(exc: BaseException | None) -> bool:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return True
    code = getattr(getattr(exc, "error_code", None), "value", None)
    return isinstance(code, int) and 400 <= code < 500


class MaskingFilter(logging.Filter):
    """Masks e-mails and digit runs in a record (message and traceback); client errors lose the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        if exc is not None and _client_error(exc):
            summary = exc.errors(include_input=False) if hasattr(exc, "errors") else str(exc)
            record.msg = f"rejected bad request ({message}): {type(exc).__name__}: {mask_text(str(summary))}"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        else:
            record.msg = mask_text(message)
            if record.exc_info:
                record.exc_text = mask_text("".join(traceback.format_exception(*record.exc_info)).rstrip())
                record.exc_info = None
        record.args = ()
        return True


def install_log_masking(*logger_names: str) -> MaskingFilter:
    """Attach one :class:`MaskingFilter` to BentoML's request-error logger and the given loggers."""
    mask = MaskingFilter()
    for name in (BENTOML_ERROR_LOGGER, *logger_names):
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskingFilter) for f in logger.filters):
            logger.addFilter(mask)
    return mask
