"""Per-installation state: a small JSON dict a SmartApp keeps between events, stored encrypted with the tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from typing import Any

from smartapp.errors import SmartAppError
from smartapp.store import Installation

# The state rides in the installation's record, read on every proactive call: keep it small.
MAX_STATE_BYTES = 64 * 1024


class StateTooLarge(SmartAppError):
    """The app put more in its state than a record should carry: the app's bug, answered 500 by reason."""

    status = 500
    reason = "state_too_large"


class InstallationState(MutableMapping[str, Any]):
    """A dict of JSON values; written back once after the handlers ran, only when something changed.

    Two handlers of one installation running at once each write their whole state: the last one wins.
    """

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = dict(values or {})
        self.changed = False

    @classmethod
    def from_record(cls, record: Installation | None) -> "InstallationState":
        text = record.app_state if record is not None else None
        loaded = json.loads(text) if text else {}
        return cls(loaded if isinstance(loaded, dict) else {})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        json.dumps(value, allow_nan=False)  # refuse what could not be stored, at the line that set it
        self._values[key] = value
        self.changed = True

    def __delitem__(self, key: str) -> None:
        del self._values[key]
        self.changed = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"InstallationState({self._values!r})"

    def encode(self) -> str:
        text = json.dumps(self._values, separators=(",", ":"), allow_nan=False)
        if len(text.encode()) > MAX_STATE_BYTES:
            raise StateTooLarge(detail=f"installation state is over {MAX_STATE_BYTES} bytes as JSON")
        return text
