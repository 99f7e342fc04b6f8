"""An in-process transport: the same protocol calls without HTTP (property tests, tools).

Bodies still go through JSON, so what arrives is exactly what the wire would carry.
"""

import json

from sync.protocol import SyncError, dumps


class LocalTransport:
    """Calls a backend (central or peer) directly as device `device`; `lose_next` drops one answer."""

    def __init__(self, backend, device: str):
        self.backend, self.device = backend, device
        self.lose_next = False

    def call(self, endpoint: str, body: dict) -> dict:
        body = json.loads(dumps(body))
        handler = getattr(self.backend, endpoint)
        answer = handler(self.device, 0.0, body)
        if self.lose_next and endpoint == "push":
            self.lose_next = False
            raise SyncError("unreachable", "the answer was lost on the way back")
        return json.loads(dumps({"ok": True, **answer}))
