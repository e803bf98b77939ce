"""The loopback HTTP server the fakes are built on (the public one in smartapp.testing)."""

from smartapp.testing.loopback import Call, LoopbackServer, Reply, Route

__all__ = ["Call", "LoopbackServer", "Reply", "Route"]
