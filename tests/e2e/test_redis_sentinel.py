"""A real Sentinel set: the master found through the sentinels, and followed across a failover without a restart."""

from __future__ import annotations

import copy
import time
import uuid

import pytest

from smartapp import create_app
from smartapp.store.cipher import TokenCipher
from smartapp.store.redis_store import RedisStore, make_redis_client
from testbed.redis_sentinel import SentinelSet
from tests.conftest import TOKEN_KEY, load_fixture, service_environment
from tests.support.commands import findings, run
from tests.support.webhook_client import post_signed

pytestmark = pytest.mark.slow
BUDGET = 5.0  # seconds one request may take while the master changes (SmartThings waits 10)


def install_body(iaid: str) -> dict:
    body = copy.deepcopy(load_fixture("install.json"))
    body["installData"]["installedApp"]["installedAppId"] = iaid
    return body


def test_the_master_is_found_through_the_sentinels_and_doctor_names_it(redis_sentinel_set, redis_sentinel_url,
                                                                       cloud, tmp_path, signer):
    app = create_app(service_environment(cloud, tmp_path, store="redis", redis_url=redis_sentinel_url))
    client = app.test_client()
    iaid = str(uuid.uuid4())
    assert post_signed(client, signer, install_body(iaid)).status_code == 200
    assert client.get("/readyz").status_code == 200
    assert "sentinel service 'mymaster'" in app.extensions["smartapp"].store.describe()
    master = redis_sentinel_set.master()
    with redis_sentinel_set.admin(master) as admin:
        assert admin.exists(f"smartapp:installation:{{{iaid}}}")
    env = {"REDIS_URL": redis_sentinel_url, "SMARTAPP_TOKEN_KEYS": TOKEN_KEY, "SMARTAPP_REDIS_WAIT_REPLICAS": "1"}
    doctor = run(["doctor", "--offline"], env, tmp_path)
    assert any(topic == "redis deployment" and f"current master 127.0.0.1:{master.port}, 1 replica(s)" in message
               for _, topic, message in findings(doctor.stdout)), doctor.stdout
    assert any(topic == "redis replicas" and level == "ok" for level, topic, _ in findings(doctor.stdout))
    too_many = run(["doctor", "--offline"], {**env, "SMARTAPP_REDIS_WAIT_REPLICAS": "2"}, tmp_path)
    assert too_many.returncode == 1 and "only 1 replica(s) are connected" in too_many.stdout


def test_a_wrong_service_name_is_503_and_doctor_says_so(redis_sentinel_set, cloud, tmp_path, signer):
    url = redis_sentinel_set.url.replace("/mymaster", "/no-such-service")
    client = create_app(service_environment(cloud, tmp_path, store="redis", redis_url=url)).test_client()
    response = post_signed(client, signer, install_body(str(uuid.uuid4())))
    assert response.status_code == 503 and response.headers["Retry-After"]
    doctor = run(["doctor", "--offline"], {"REDIS_URL": url, "SMARTAPP_TOKEN_KEYS": TOKEN_KEY}, tmp_path)
    assert doctor.returncode == 1 and "the sentinels name no master" in doctor.stdout, doctor.stdout


def test_a_failover_during_a_stream_of_installs_with_wait_loses_no_acknowledged_write(cloud, tmp_path, signer):
    sentinels = SentinelSet().start()
    try:
        old_master = sentinels.master()
        env = service_environment(cloud, tmp_path, store="redis", redis_url=sentinels.url)
        client = create_app({**env, "SMARTAPP_REDIS_WAIT_REPLICAS": "1"}).test_client()
        # An instance pointed at the master's own address, as before Sentinel URLs existed.
        pinned = create_app(service_environment(cloud, tmp_path / "pinned", store="redis",
                                                redis_url=f"redis://127.0.0.1:{old_master.port}/0")).test_client()
        acknowledged: list[str] = []
        statuses: dict[int, int] = {}
        acknowledged_after = 0
        failover_started: float | None = None
        while True:
            iaid = str(uuid.uuid4())
            started = time.monotonic()
            response = post_signed(client, signer, install_body(iaid))
            assert time.monotonic() - started < BUDGET
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in (200, 503), response.get_data(as_text=True)
            if response.status_code == 200:
                acknowledged.append(iaid)
                acknowledged_after += failover_started is not None
            else:
                assert response.headers["Retry-After"]
            if len(acknowledged) == 50 and failover_started is None:
                sentinels.failover()
                failover_started = time.monotonic()
            if failover_started is not None:
                # Done once the new master has taken 50 installs: recovered, with no restart.
                if sentinels.master() is not old_master and acknowledged_after >= 50:
                    break
                assert time.monotonic() - failover_started < 40, statuses
        sentinels.wait_for_replicas()
        assert pinned.get("/readyz").status_code == 503  # the old master is a replica now: not writable
        assert client.get("/readyz").status_code == 200
        store = RedisStore(make_redis_client(sentinels.url), TokenCipher.from_env_value(TOKEN_KEY))
        try:
            lost = [iaid for iaid in acknowledged if store.get(iaid) is None]
        finally:
            store.close()
        assert lost == [], f"{len(lost)} of {len(acknowledged)} acknowledged INSTALLs lost ({statuses})"
    finally:
        sentinels.stop()


def test_a_connection_left_for_a_new_master_forgets_the_replies_owed_on_the_old_one(redis_sentinel_set,
                                                                                   redis_sentinel_url):
    """A replay marker's "done" is sent without waiting for its reply; when the sentinels name another master,
    the connection that owed that reply reconnects owing nothing, instead of waiting out its read timeout."""
    store = RedisStore(make_redis_client(redis_sentinel_url), TokenCipher.from_env_value(TOKEN_KEY))
    try:
        done = uuid.uuid4().hex
        assert store.claim(done, owner="first", lease_seconds=60).name == "CLAIMED"
        store.complete(done, ttl_seconds=60)
        runner = store._scripts
        assert runner._idle[-1]._unread == 1
        runner._master, runner._next_check = ("127.0.0.1", 1), time.monotonic() + 60  # "the master moved"
        with redis_sentinel_set.admin(redis_sentinel_set.master()) as admin:
            before = admin.info("commandstats")["cmdstat_evalsha"]["calls"]
            assert store.claim(uuid.uuid4().hex, owner="second", lease_seconds=60).name == "CLAIMED"
            # Once: waiting for a reply the new connection never owed would time out and send the claim again.
            assert admin.info("commandstats")["cmdstat_evalsha"]["calls"] == before + 1
        assert runner._idle[-1]._unread == 0
    finally:
        store.close()
