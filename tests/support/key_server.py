"""The loopback key server as a fixture, and made-up keyIds in SmartThings' form."""

from __future__ import annotations

import pytest

from testbed.keyserver import KeyServer


def key_id(n: int, region: str = "test1") -> str:
    return f"/pl/{region}/" + "-".join(f"{b:02x}" for b in n.to_bytes(20, "big"))


@pytest.fixture
def server():
    keys = KeyServer().start()
    yield keys
    keys.stop()
