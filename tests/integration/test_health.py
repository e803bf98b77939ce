"""/healthz answers without any I/O; /readyz answers 503 while the store cannot, and 200 once it can."""

from __future__ import annotations

import time

import pytest

from testbed.redis_server import RedisServer


@pytest.fixture
def private_redis():
    server = RedisServer().start()
    yield server
    server.stop()  # resumes a paused server first


def test_health_and_readiness_on_the_embedded_store(make_app):
    client = make_app("sqlite").test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json() == {"status": "ready", "store": "sqlite"}
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code == 200


@pytest.mark.slow
def test_healthz_does_no_io_while_readyz_reports_a_frozen_store(make_app, private_redis):
    client = make_app("redis", REDIS_URL=private_redis.url).test_client()
    assert client.get("/readyz").status_code == 200
    private_redis.pause()  # the socket accepts, nothing answers: any store call would wait for its timeout

    started = time.monotonic()
    for _ in range(20):
        assert client.get("/healthz").status_code == 200
    assert time.monotonic() - started < 0.5

    started = time.monotonic()
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.get_json() == {"error": "store_unavailable"} and not_ready.headers["Retry-After"]
    assert time.monotonic() - started < 3.0  # bounded by the Redis client's timeouts, never a hang

    private_redis.resume()
    assert client.get("/readyz").status_code == 200


def test_an_app_started_while_redis_is_down_is_alive_but_not_ready(make_app, private_redis):
    private_redis.stop()
    client = make_app("redis", REDIS_URL=private_redis.url).test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503


def test_a_configuration_that_cannot_serve_never_becomes_ready(make_app):
    from smartapp.settings import ConfigError

    # "config valid" is checked before the app exists: a bad configuration has no /readyz to answer 200.
    with pytest.raises(ConfigError):
        make_app("sqlite", SMARTAPP_KEY_SERVER="ftp://nowhere")


def test_ready_means_writable_so_a_full_redis_or_a_replica_is_not_ready(make_app, private_redis):
    import redis

    client = make_app("redis", REDIS_URL=private_redis.url).test_client()
    assert client.get("/readyz").status_code == 200
    admin = redis.Redis.from_url(private_redis.url)
    primary = RedisServer().start()
    try:
        admin.config_set("maxmemory", "1")  # answers PING, refuses writes (noeviction)
        full = client.get("/readyz")
        assert full.status_code == 503 and full.headers["Retry-After"]
        admin.config_set("maxmemory", "0")
        assert client.get("/readyz").status_code == 200
        admin.replicaof("127.0.0.1", primary.port)  # demoted: reads work, writes do not
        assert client.get("/readyz").status_code == 503
        admin.replicaof("NO", "ONE")
        assert client.get("/readyz").status_code == 200
    finally:
        admin.close()
        primary.stop()
