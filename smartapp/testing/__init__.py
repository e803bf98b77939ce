"""Test a SmartApp without SmartThings: a fake SmartThings API on 127.0.0.1 and the server it is built on."""

from smartapp.testing.fake_smartthings import FakeSmartThings
from smartapp.testing.loopback import Call, LoopbackServer, Reply, Route

__all__ = ["Call", "FakeSmartThings", "LoopbackServer", "Reply", "Route"]
