"""Short hash tags that land in a given Redis Cluster slot, to put a key beside others without naming them."""

from __future__ import annotations

import binascii
import threading

SLOTS = 16384

# Tags are hex numbers, found by counting up: filling every slot takes about 315,000 CRC16s (~0.1 s) in
# all, spread over the first uses of each slot, and nothing is computed before a cluster needs it.
_tags: list[str | None] = [None] * SLOTS
_next = 0
_lock = threading.Lock()


def tag_for_slot(slot: int) -> str:
    tag = _tags[slot]
    if tag is not None:
        return tag
    global _next
    with _lock:
        while _tags[slot] is None:
            text = format(_next, "x")
            found = binascii.crc_hqx(text.encode(), 0) % SLOTS  # Redis' key slot: CRC16-XMODEM mod 16384
            if _tags[found] is None:
                _tags[found] = text
            _next += 1
        return _tags[slot]  # type: ignore[return-value]
