"""Test a SmartApp without SmartThings: a fake SmartThings API on 127.0.0.1, and a harness that sends it
signed lifecycles the way SmartThings does."""

from smartapp.fakes.fake_smartthings import FakeSmartThings
from smartapp.fakes.loopback import Call, LoopbackServer, Reply, Route
from smartapp.testing.harness import AppHarness, TestSigner

__all__ = ["AppHarness", "Call", "FakeSmartThings", "LoopbackServer", "Reply", "Route", "TestSigner"]
