"""Signed messages: for sites whose broker is shared, every message between wgops processes
carries an HMAC-SHA256 of its body, and one without a valid signature is refused unread.

Off unless ``message_key`` is set (``WGOPS_MESSAGE_KEY``, the same on every host). Keys are
rotated by listing several (comma-separated): the first signs, any of them verifies — add the
new key second everywhere, then move it first, then drop the old one. A key is never logged,
printed or handed to a task. Signing authenticates; the daemons still believe only the
database (a valid message is a wake-up, not a claim).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from wgops.store.errors import ProtocolError

HEADER = "x-wgops-signature"


class Signer:
    def __init__(self, keys: tuple[str, ...]):
        self._keys = tuple(key.encode() for key in keys)

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def sign(self, body: bytes) -> str:
        return hmac.new(self._keys[0], body, hashlib.sha256).hexdigest()

    def headers(self, body: bytes) -> dict[str, str] | None:
        """The AMQP headers that carry the signature (None when signing is off)."""
        return {HEADER: self.sign(body)} if self._keys else None

    def verify(self, body: bytes, headers: dict[str, Any] | None) -> None:
        """Raise ProtocolError unless signing is off or a key signed ``body``."""
        if not self._keys:
            return
        signature = (headers or {}).get(HEADER)
        if isinstance(signature, bytes):
            signature = signature.decode("ascii", "replace")
        if not isinstance(signature, str):
            raise ProtocolError("unsigned message (message_key is set on this daemon)")
        for key in self._keys:
            if hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest(), signature):
                return
        raise ProtocolError("the message's signature matches no message_key")

    def __repr__(self) -> str:                      # never the keys
        return f"Signer({len(self._keys)} keys)"
