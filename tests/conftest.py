"""Shared fixtures: a private redis-server, a test signing key, a scrubbed environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from testbed.redis_server import RedisServer
from testbed.signing import Signer, TestKey

LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_fixture(name: str) -> dict:
    """A lifecycle body by file name, from tests/fixtures."""
    return json.loads((LOCAL_FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def _scrub_environment(monkeypatch):
    """Tests never see the developer's SMARTAPP_*/REDIS_URL settings."""
    for name in list(os.environ):
        if name.startswith("SMARTAPP_") or name in {"REDIS_URL", "LOG_FORMAT", "PORT"}:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gevent_turns(monkeypatch):
    """smartapp.after_turn as in a gevent worker, on gevent's real hub loop: `gevent_turns.sleep(0)` ends the turn."""
    gevent = pytest.importorskip("gevent")
    from smartapp import after_turn

    monkeypatch.setattr(after_turn, "_loop", gevent.get_hub().loop)
    return gevent


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """A URL to the suite's redis-server, emptied before each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster_nodes():
    """A 3-primary Redis Cluster with a replica each, shared by the tests that do not break it."""
    from testbed.redis_cluster import RedisClusterNodes

    cluster = RedisClusterNodes().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster_nodes):
    """A URL to one node of the suite's cluster (as a provider gives it), every primary emptied first."""
    redis_cluster_nodes.flush()
    return redis_cluster_nodes.url


@pytest.fixture(scope="session")
def redis_sentinel_set():
    """Master, replica and three sentinels, shared by the tests that do not fail it over."""
    from testbed.redis_sentinel import SentinelSet

    sentinels = SentinelSet().start()
    yield sentinels
    sentinels.stop()


@pytest.fixture
def redis_sentinel_url(redis_sentinel_set):
    """A redis+sentinel:// URL to the suite's Sentinel set, the master emptied first."""
    with redis_sentinel_set.admin(redis_sentinel_set.master()) as admin:
        admin.flushall()
    return redis_sentinel_set.url


@pytest.fixture(scope="session")
def test_key() -> TestKey:
    return TestKey.generate()


@pytest.fixture
def signer(test_key) -> Signer:
    return Signer(test_key)


@pytest.fixture
def cloud(test_key):
    """Loopback key server (publishing the test key) and SmartThings API."""
    from types import SimpleNamespace

    from smartapp.testing import FakeSmartThings
    from testbed.keyserver import KeyServer

    keys = KeyServer().start()
    keys.publish(test_key.key_id, test_key.certificate_pem)
    api = FakeSmartThings().start()
    yield SimpleNamespace(keys=keys, api=api)
    keys.stop()
    api.stop()


APP_ID = "5c03e518-118a-44cb-85ad-7877d0b302e4"
# The core's tests run against an explicit app (the benchmarks serve it too), never the bundled default app.
TEST_APP = "examples.switch_logger:app"
TOKEN_KEY = "hZbiYh5ZOAk1Q4Y5lImkJiyLh1SRHWgQgjaYMtIaCyg="


def service_environment(cloud, tmp_path, *, store: str, redis_url: str | None = None) -> dict[str, str]:
    """The environment a deployment would set, pointed at the loopback fakes."""
    env = {
        "SMARTAPP_APP": TEST_APP,
        "SMARTAPP_APP_ID": APP_ID,
        "SMARTAPP_KEY_SERVER": cloud.keys.url,
        "SMARTAPP_API_URL": cloud.api.url,
        "SMARTAPP_TOKEN_URL": cloud.api.url + "/oauth/token",
        "SMARTAPP_DB_PATH": str(tmp_path / "smartapp.db"),
        "SMARTAPP_PUBLIC_URL": "https://smartapp.example.test/",
    }
    if store == "redis":
        env["REDIS_URL"] = redis_url
        env["SMARTAPP_TOKEN_KEYS"] = TOKEN_KEY
    return env


@pytest.fixture(params=["redis", "sqlite"])
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def make_app(cloud, tmp_path, request):
    """Build the Flask app on the chosen store; keyword overrides are environment variable names."""
    from smartapp import create_app

    def factory(store: str = "sqlite", **overrides):
        redis_url = request.getfixturevalue("redis_url") if store == "redis" else None
        env = service_environment(cloud, tmp_path, store=store, redis_url=redis_url)
        env.update(overrides)
        return create_app(env)

    return factory


@pytest.fixture
def smartapp_log():
    """Every record of the `smartapp` loggers; `.raw()` is all their text unscrubbed, for secret checks."""
    import logging

    class Capture(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

        def reasons(self) -> list[str]:
            return [getattr(r, "reason", None) for r in self.records]

        def raw(self) -> str:
            """Messages and every field unscrubbed, so a secret check does not lean on the scrubber."""
            return "\n".join(repr((r.getMessage(), vars(r), r.exc_text)) for r in self.records)

    capture = Capture()
    logger = logging.getLogger("smartapp")
    logger.addHandler(capture)
    yield capture
    logger.removeHandler(capture)


@pytest.fixture
def client(app):
    """The Flask test client of the module's `app` fixture."""
    return app.test_client()


@pytest.fixture
def store(app):
    """The store of the module's `app` fixture (modules testing stores directly define their own)."""
    return app.extensions["smartapp"].store


# The SmartApp's own OAuth client (SMARTAPP_CLIENT_ID/SECRET), as SmartThings' token endpoint knows it.
ST_CLIENT_ID, ST_CLIENT_SECRET = "st-client", "st-secret-canary-0d1e"


@pytest.fixture
def smartthings_tokens(cloud):
    """SmartThings' token endpoint on the API fake (SMARTAPP_TOKEN_URL), single-use refresh tokens."""
    from tests.support.oauth_provider import TokenAuthority

    return TokenAuthority(client_id=ST_CLIENT_ID, client_secret=ST_CLIENT_SECRET, expires_in=86399,
                          token_prefix="st-").mount(cloud.api, token_path="/oauth/token")


class RecordingTokens:
    """A TokenSource for API client tests: a fixed token, an optional replacement after a 401, recorded."""

    def __init__(self, token: str, replacement: str | None = None) -> None:
        self.current = token
        self.replacement = replacement
        self.unauthorized: list[str] = []

    def token(self, deadline) -> str:
        return self.current

    def after_unauthorized(self, token: str, deadline) -> str | None:
        self.unauthorized.append(token)
        if self.replacement:
            self.current = self.replacement
        return self.replacement


API_INSTALLED_APP_ID = "iapp-1"
API_LOCATION_ID = "loc-1"
API_TOKEN = "tok-7f3c9a1e-canary"
FIXED_NOW = 1_700_000_000.0


@pytest.fixture
def fake_st():
    """The public FakeSmartThings, with the installation's location (Europe/Berlin) and installed app known."""
    from smartapp.testing import FakeSmartThings

    with FakeSmartThings() as server:
        server.add_location(API_LOCATION_ID, time_zone_id="Europe/Berlin")
        server.add_installed_app(API_INSTALLED_APP_ID, location_id=API_LOCATION_ID)
        yield server


@pytest.fixture(scope="module")
def smartthings():
    """The public FakeSmartThings shared by a module's app tests (each AppHarness is its own installation)."""
    from smartapp.testing import FakeSmartThings

    with FakeSmartThings() as server:
        yield server


@pytest.fixture(scope="module")
def harness_signer():
    """The key an AppHarness signs with, trusted by the service it drives (in-process or under gunicorn)."""
    from smartapp.testing import TestSigner

    return TestSigner()


@pytest.fixture
def make_api(fake_st):
    """Build a SmartThingsApi on `fake_st`; keywords override its arguments. `.sleeps` records waits."""
    from smartapp.api import SmartThingsApi
    from smartapp.deadline import Deadline
    from smartapp.smartthings import SmartThingsClient

    http = SmartThingsClient(api_url=fake_st.url)

    def factory(**overrides):
        sleeps: list[float] = []
        arguments = dict(http=http, installed_app_id=API_INSTALLED_APP_ID, location_id=API_LOCATION_ID,
                         tokens=RecordingTokens(API_TOKEN), deadline=Deadline.after(8.0), sleep=sleeps.append,
                         clock=lambda: FIXED_NOW)
        arguments.update(overrides)
        api = SmartThingsApi(**arguments)
        api.sleeps = sleeps
        return api

    yield factory
    http.session.close()
