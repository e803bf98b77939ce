"""`smartapp check-config` on REDIS_URL and the SMARTAPP_REDIS_* settings: each mistake refused, each documented form
accepted."""

from __future__ import annotations

import pytest

from tests.conftest import TOKEN_KEY
from tests.support.commands import run


@pytest.mark.slow
@pytest.mark.parametrize("env,needle", [
    ({"REDIS_URL": "redis://127.0.0.1:1/0?ssl_cert_req=none"}, "unknown query option 'ssl_cert_req'"),
    ({"REDIS_URL": "redis+sentinel://127.0.0.1:26379"}, "service (master) name"),
    ({"REDIS_URL": "redis://127.0.0.1:7000,127.0.0.1:7001"}, "one node of a Redis Cluster"),
    ({"REDIS_URL": "rediss://127.0.0.1:1/0", "SMARTAPP_REDIS_TLS_VERIFY": "off"}, "SMARTAPP_REDIS_TLS_VERIFY"),
    ({"REDIS_URL": "redis://127.0.0.1:1/0", "SMARTAPP_REDIS_WAIT_REPLICAS": "one"}, "whole number of replicas"),
])
def test_check_config_refuses_a_bad_redis_configuration(tmp_path, env, needle):
    result = run(["check-config"], {"SMARTAPP_TOKEN_KEYS": TOKEN_KEY, **env}, tmp_path)
    assert result.returncode == 1
    assert needle in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("url", [
    "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster",
    "rediss://:pw@127.0.0.1:6380/0?ssl_cert_reqs=none",
    "unix:///tmp/redis.sock?db=2",
])
def test_check_config_accepts_each_documented_form(tmp_path, url):
    result = run(["check-config"], {"SMARTAPP_TOKEN_KEYS": TOKEN_KEY, "REDIS_URL": url}, tmp_path)
    assert result.returncode == 0, result.stderr
