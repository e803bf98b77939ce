"""Tests through a real redis-server or SQLite store, loopback fakes, the Flask test client or an in-process
AppHarness."""
