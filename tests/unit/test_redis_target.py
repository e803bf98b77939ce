"""REDIS_URL's forms and the SMARTAPP_REDIS_* settings: what is accepted, and what is refused with its fix."""

from __future__ import annotations

import pytest

from smartapp.settings import Settings
from smartapp.store.redis_target import (
    RedisOptions, RedisUrlError, parse_redis_url, target_problems, tls_arguments, verify_mode,
)
from smartapp.wiring import redis_options
from tests.conftest import TOKEN_KEY


def test_single_server_forms():
    target = parse_redis_url("rediss://user:p%40ss@cache.example:6380/2")
    assert (target.scheme, target.hosts, target.db, target.username, target.password) == \
        ("rediss", (("cache.example", 6380),), 2, "user", "p@ss")
    assert target.tls and not target.sentinel
    assert parse_redis_url("redis://:secret@10.0.0.5").hosts == (("10.0.0.5", 6379),)
    assert parse_redis_url("redis://[::1]:7000").hosts == (("::1", 7000),)
    unix = parse_redis_url("unix:///run/redis/redis.sock?db=3")
    assert (unix.path, unix.db) == ("/run/redis/redis.sock", 3)
    assert "secret" not in repr(parse_redis_url("redis://:secret@h:1/0"))


def test_sentinel_forms():
    target = parse_redis_url("redis+sentinel://app:pw@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/4"
                             "?sentinel_password=spw")
    assert target.sentinel and not target.tls
    assert target.hosts == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380))
    assert (target.service, target.db, target.username, target.password) == ("mymaster", 4, "app", "pw")
    assert target.options == {"sentinel_password": "spw"}
    assert parse_redis_url("rediss+sentinel://s1:26379/cache").tls
    assert target.where() == "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,::1:26380/mymaster/4"


@pytest.mark.parametrize("url,needle", [
    ("http://cache:6379", "must start with redis://"),
    ("redis://cache:6379/0?ssl_cert_req=none", "did you mean ssl_cert_reqs"),
    ("redis://cache:6379/0?socket_timout=1", "did you mean socket_timeout"),
    ("redis://cache:6379/0?ssl_cert_reqs=none", "only applies to TLS"),
    ("rediss://cache:6379/0?ssl_cert_reqs=never", "none, optional or required"),
    ("redis://cache:6379/0?socket_timeout=-1", "positive number"),
    ("redis://cache:6379/mymaster", "redis+sentinel://"),
    ("redis://node1:7000,node2:7001", "one node of a Redis Cluster"),
    ("redis://cache:99999", "1 to 65535"),
    ("redis://cache:6379/0?db=1", "database twice"),
    ("redis+sentinel://s1:26379", "service (master) name"),
    ("redis+sentinel://s1:26379/", "service (master) name"),
    ("redis+sentinel://s1:26379/mymaster/zero", "must be a number"),
    ("redis+sentinel:///mymaster", "at least one sentinel"),
    ("redis+sentinel://s1:26379/mymaster?sentinel_pasword=x", "did you mean sentinel_password"),
    ("unix://", "socket's path"),
])
def test_malformed_urls_are_refused_with_the_fix(url, needle):
    with pytest.raises(RedisUrlError) as caught:
        parse_redis_url(url)
    assert needle in str(caught.value)


def test_a_secret_option_value_is_never_repeated():
    with pytest.raises(RedisUrlError) as caught:
        parse_redis_url("redis+sentinel://s1/m?sentinel_password=hunter2&sentinel_password=x&bogus=1")
    assert "hunter2" not in str(caught.value)


def test_tls_settings_become_connection_arguments(tmp_path):
    tls = parse_redis_url("rediss://cache:6380/0")
    assert verify_mode(tls, RedisOptions()) == "full" and tls_arguments(tls, RedisOptions()) == {}
    assert tls_arguments(tls, RedisOptions(tls_verify="ca")) == {"ssl_cert_reqs": "required",
                                                                  "ssl_check_hostname": False}
    assert tls_arguments(tls, RedisOptions(tls_verify="none"))["ssl_cert_reqs"] == "none"
    assert verify_mode(parse_redis_url("rediss://c:1/0?ssl_cert_reqs=none"), RedisOptions()) == "none"
    assert verify_mode(parse_redis_url("rediss://c:1/0?ssl_check_hostname=false"), RedisOptions()) == "ca"
    assert verify_mode(parse_redis_url("redis://c:1/0"), RedisOptions(tls_verify="none")) is None


def test_settings_problems_name_each_mistake(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")

    def problems(url: str, **options) -> list[str]:
        return target_problems(url, RedisOptions(**options))

    assert problems("rediss://c:1/0") == []
    assert "SMARTAPP_REDIS_TLS_VERIFY must be full" in problems("rediss://c:1/0", tls_verify="strict")[0]
    assert "does not use TLS" in problems("redis://c:1/0", ca_cert="@/nonexistent")[0]
    assert "does not use TLS" in problems("redis://c:1/0", tls_verify="none")[0]
    assert "both set the verification" in problems("rediss://c:1/0?ssl_cert_reqs=none", tls_verify="none")[0]
    assert "not PEM certificates" in problems("rediss://c:1/0", ca_cert=f"@{ca}")[0]
    assert "cannot read" in problems("rediss://c:1/0", ca_cert=f"@{tmp_path / 'missing.pem'}")[0]
    assert "0 or more" in problems("redis://c:1/0", wait_replicas=-1)[0]


def test_the_app_refuses_a_misspelt_option_at_start_instead_of_crashing_each_worker(tmp_path):
    from smartapp import create_app
    from smartapp.settings import ConfigError

    with pytest.raises(ConfigError) as caught:
        create_app({"REDIS_URL": "redis://127.0.0.1:1/0?ssl_cert_req=none", "SMARTAPP_TOKEN_KEYS": TOKEN_KEY,
                    "SMARTAPP_DB_PATH": str(tmp_path / "x.db")})
    assert "ssl_cert_req" in str(caught.value)


def test_wait_replicas_is_read_as_a_number():
    settings = Settings.from_env({"REDIS_URL": "redis://c:1/0", "SMARTAPP_REDIS_WAIT_REPLICAS": "2"}, dotenv=None)
    assert redis_options(settings) == RedisOptions(wait_replicas=2)
