"""A real 3-primary Redis Cluster from one node's URL: every operation follows the slot map, nothing answers 500."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from redis.crc import key_slot

from smartapp import create_app
from smartapp.errors import StoreUnavailable
from smartapp.store import ReplayState
from smartapp.store.cipher import TokenCipher
from smartapp.store.redis_store import RedisStore, make_redis_client
from testbed.redis_cluster import RedisClusterNodes
from testbed.service import Gunicorn
from tests.conftest import TOKEN_KEY, load_fixture, service_environment
from tests.support.commands import findings, run
from tests.support.webhook_client import post_signed

pytestmark = pytest.mark.slow
BUDGET = 5.0  # seconds one request may take while a node is frozen (SmartThings waits 10)
IAID = "5f0a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher([Fernet.generate_key().decode()])


def ids_on_every_primary(cluster: RedisClusterNodes, per_primary: int = 3) -> dict[int, list[str]]:
    """Installation ids grouped by the port of the primary that holds their slot."""
    found: dict[int, list[str]] = {server.port: [] for server in cluster.primaries}
    while any(len(ids) < per_primary for ids in found.values()):
        iaid = str(uuid.uuid4())
        port = cluster.primary_of_slot(key_slot(iaid.encode())).port
        if len(found.setdefault(port, [])) < per_primary:
            found[port].append(iaid)
    return found


def once_it_answers(call, timeout: float = 10):
    """`call`'s result once the store stops answering 503 (recovery without a restart)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except StoreUnavailable:
            assert time.monotonic() < deadline, "the store did not recover"
            time.sleep(0.2)


def install_body(iaid: str, refresh_token: str = "refresh-1") -> dict:
    body = copy.deepcopy(load_fixture("install.json"))
    body["installData"]["installedApp"]["installedAppId"] = iaid
    body["installData"]["refreshToken"] = refresh_token
    return body


def update_body(iaid: str, refresh_token: str) -> dict:
    body = install_body(iaid, refresh_token)
    body["lifecycle"] = "UPDATE"
    body["updateData"] = body.pop("installData")
    return body


def test_any_node_url_finds_the_cluster_and_keys_land_on_every_primary(redis_cluster_nodes, redis_cluster_url,
                                                                      cipher):
    groups = ids_on_every_primary(redis_cluster_nodes)
    every_id = {iaid for ids in groups.values() for iaid in ids}
    for server in redis_cluster_nodes.servers:  # a primary or a replica: the URL a provider hands out
        store = RedisStore(make_redis_client(f"redis://127.0.0.1:{server.port}"), cipher)
        try:
            assert store.deployment == "cluster" and "3 primaries" in store.describe()
            for iaid in every_id:
                store.update(iaid, {"locale": str(server.port)})
            assert set(store.installed_app_ids()) == every_id
            store.verify_keys()
            store.ping()
        finally:
            store.close()
    for port, ids in groups.items():
        with redis.Redis(port=port) as node:
            assert all(node.exists(f"smartapp:installation:{{{iaid}}}") for iaid in ids)


def test_a_node_that_does_not_answer_at_start_is_asked_again_before_use(redis_cluster_nodes, redis_cluster_url,
                                                                        cipher):
    replica = redis_cluster_nodes.replicas[0]  # frozen briefly: a replica, so no failover starts
    replica.pause()
    try:
        store = RedisStore(make_redis_client(f"redis://127.0.0.1:{replica.port}"), cipher)
        assert "not connected yet" in store.describe()
        with pytest.raises(StoreUnavailable) as caught:
            store.update(IAID, {"locale": "en"})
        assert caught.value.detail == "redis: TimeoutError"
    finally:
        replica.resume()
    assert once_it_answers(lambda: store.update(IAID, {"locale": "en"})) == 1
    assert store.deployment == "cluster" and "3 primaries" in store.describe()
    store.close()


def test_the_key_check_lives_under_a_hash_tag_and_an_old_one_is_moved(redis_cluster_url, cipher):
    raw = make_redis_client(redis_cluster_url)
    legacy = cipher.encrypt("", "keycheck", "smartapp-keycheck-v1")
    raw.set("smartapp:keycheck", legacy)
    store = RedisStore(make_redis_client(redis_cluster_url), cipher)
    try:
        store.verify_keys()
        assert raw.get("smartapp:keycheck:{keycheck}") == legacy.encode() and raw.get("smartapp:keycheck") is None
        stranger = RedisStore(make_redis_client(redis_cluster_url), TokenCipher([Fernet.generate_key().decode()]))
        with pytest.raises(Exception) as caught:
            stranger.verify_keys()
        assert type(caught.value).__name__ == "CorruptRecord"
        stranger.close()
    finally:
        store.close()
        raw.close()


def _node_id(port: int) -> str:
    with redis.Redis(port=port) as node:
        return node.execute_command("CLUSTER", "MYID").decode()


def _set_slot(ports, slot: int, *arguments) -> None:
    for port in ports:
        with redis.Redis(port=port) as node:
            node.execute_command("CLUSTER", "SETSLOT", slot, *arguments)


def _start_moving(slot: int, source: int, target: int) -> None:
    _set_slot([target], slot, "IMPORTING", _node_id(source))
    _set_slot([source], slot, "MIGRATING", _node_id(target))


def _finish_moving(slot: int, source: int, target: int, primaries: list[int]) -> None:
    with redis.Redis(port=source) as node:
        while keys := node.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            node.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
    _set_slot(primaries, slot, "NODE", _node_id(target))


def test_ask_and_moved_are_followed_while_a_slot_migrates(redis_cluster_nodes, redis_cluster_url, cipher):
    iaid = str(uuid.uuid4())
    slot = key_slot(iaid.encode())
    source = redis_cluster_nodes.primary_of_slot(slot).port
    target = next(server.port for server in redis_cluster_nodes.primaries if server.port != source)
    store = RedisStore(make_redis_client(redis_cluster_url), cipher)
    primaries = [server.port for server in redis_cluster_nodes.primaries]
    try:
        store.update(iaid, {"locale": "en"})
        _start_moving(slot, source, target)
        # A key the source does not have is answered with ASK: written on the target, read from there.
        store.issue(iaid, {"verifier": "made-during-migration"}, ttl_seconds=600)
        with redis.Redis(port=target) as node:
            assert node.execute_command("ASKING") and node.exists(f"smartapp:link:{{{iaid}}}")
        assert store.pending(iaid) == {"verifier": "made-during-migration"}
        assert store.update(iaid, {"locale": "fr"}) == 2  # still on the source: served there
        # Keys of one call split between the two nodes: TRYAGAIN, answered as 503, never 500.
        with pytest.raises(StoreUnavailable) as caught:
            store.consume(iaid)
        assert "TryAgain" in caught.value.detail
        with pytest.raises(StoreUnavailable):
            store.delete(iaid)
        _finish_moving(slot, source, target, primaries)
        # The store's slot map still names the source: MOVED, followed, by the scripts and by reads.
        assert store.update(iaid, {"locale": "de"}) == 3
        assert store.get(iaid).locale == "de"
        assert store.consume(iaid) == {"verifier": "made-during-migration"}
    finally:
        store.close()
        if redis_cluster_nodes.primary_of_slot(slot).port == target:  # the slot goes back where it was
            _start_moving(slot, target, source)
            _finish_moving(slot, target, source, primaries)
        else:
            _set_slot(primaries, slot, "NODE", _node_id(source))
    redis_cluster_nodes.wait_for_state_ok()


def test_a_slot_no_primary_serves_is_503_and_recovers_without_restart(redis_cluster_nodes, redis_cluster_url,
                                                                       cipher):
    iaid = str(uuid.uuid4())
    slot = key_slot(iaid.encode())
    owner = redis_cluster_nodes.primary_of_slot(slot)
    store = RedisStore(make_redis_client(redis_cluster_url), cipher)
    try:
        store.update(iaid, {"locale": "en"})
        with redis.Redis(port=owner.port) as node:
            node.execute_command("CLUSTER", "DELSLOTS", slot)
            try:
                for call in (lambda: store.update(iaid, {"locale": "fr"}), lambda: store.get(iaid),
                             lambda: store.delete(iaid)):
                    with pytest.raises(StoreUnavailable) as caught:
                        call()
                    assert "ClusterDown" in caught.value.detail or "CLUSTERDOWN" in caught.value.detail
            finally:
                node.execute_command("CLUSTER", "ADDSLOTS", slot)
        redis_cluster_nodes.wait_for_state_ok()
        assert once_it_answers(lambda: store.update(iaid, {"locale": "fr"})) == 2
    finally:
        store.close()


def test_a_frozen_primary_stops_its_own_slots_only_and_loses_nothing(cloud, tmp_path, signer):
    cluster = RedisClusterNodes().start()
    try:
        env = service_environment(cloud, tmp_path, store="redis", redis_url=cluster.url)
        client = create_app(env).test_client()
        groups = ids_on_every_primary(cluster, per_primary=4)
        victim = cluster.primaries[1]
        acknowledged: dict[str, str] = {}
        for ids in groups.values():
            for iaid in ids:
                assert post_signed(client, signer, install_body(iaid)).status_code == 200
                acknowledged[iaid] = "refresh-1"
        victim.pause()
        frozen_at = time.monotonic()
        assert client.get("/readyz").status_code == 503  # one primary takes no writes: not ready
        victims = set(groups[victim.port])
        seen: dict[tuple[bool, int], int] = {}
        recovered = False
        round_number = 0
        try:
            while not recovered:
                assert time.monotonic() - frozen_at < 30, f"the victim's slots never came back: {seen}"
                round_number += 1
                recovered = True
                for iaid in acknowledged:
                    token = f"refresh-{round_number}-{iaid[:4]}"
                    started = time.monotonic()
                    response = post_signed(client, signer, update_body(iaid, token))
                    assert time.monotonic() - started < BUDGET
                    assert response.status_code in (200, 503), response.status_code
                    key = (iaid in victims, response.status_code)
                    seen[key] = seen.get(key, 0) + 1
                    if response.status_code == 200:
                        acknowledged[iaid] = token
                    else:
                        assert iaid in victims, "a slot of a healthy primary answered 503"
                        assert response.headers["Retry-After"]
                        recovered = False
            assert seen.get((True, 503)), "the frozen primary's slots were never refused"
            assert client.get("/readyz").status_code == 200  # its replica took over: no restart needed
        finally:
            victim.resume()
        cluster.wait_for_state_ok()
        store = RedisStore(make_redis_client(cluster.url), TokenCipher.from_env_value(TOKEN_KEY))
        try:
            for iaid, token in acknowledged.items():
                assert store.get(iaid).refresh_token == token, "an acknowledged write was lost"
        finally:
            store.close()
    finally:
        cluster.stop()


@pytest.mark.e2e
def test_every_lifecycle_through_gunicorn_on_the_cluster(redis_cluster_nodes, redis_cluster_url, cloud, tmp_path,
                                                         signer):
    env = service_environment(cloud, tmp_path, store="redis", redis_url=redis_cluster_url)
    env["SMARTAPP_CLIENT_ID"], env["SMARTAPP_CLIENT_SECRET"] = "st-client", "st-secret"
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    groups = ids_on_every_primary(redis_cluster_nodes, per_primary=2)
    every_id = [iaid for ids in groups.values() for iaid in ids]

    def send(body: dict, headers: dict | None = None) -> requests.Response:
        raw = json.dumps(body).encode()
        return requests.post(server.url + "/", data=raw, headers=headers or signer.headers(raw), timeout=10)

    try:
        for iaid in every_id:
            assert send(install_body(iaid)).json() == {"installData": {}}
            assert send(update_body(iaid, "refresh-2")).json() == {"updateData": {}}
            event = load_fixture("event_device.json")
            event["eventData"]["installedApp"]["installedAppId"] = iaid
            assert send(event).json() == {"eventData": {}}
        replayed = install_body(every_id[0])
        raw = json.dumps(replayed).encode()
        headers = signer.headers(raw)
        assert send(replayed, headers).status_code == 200
        for _ in range(4):  # the same signed request again, on any worker: answered, changes nothing
            assert send(replayed, {**headers, "Connection": "close"}).status_code == 200
        assert requests.get(server.url + "/readyz", timeout=5).status_code == 200

        listed = run(["installations", "list"], env, tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert {line.split()[0] for line in listed.stdout.splitlines() if line.strip()} >= set(every_id)
        due = run(["refresh-due", "--within", "1s"], env, tmp_path)
        assert f"{len(every_id)} installations checked" in due.stdout + due.stderr, due.stdout + due.stderr
        doctor = run(["doctor", "--offline"], env, tmp_path)
        assert any(topic == "redis deployment" and "Redis Cluster with 3 primaries and 3 replicas" in message
                   for _, topic, message in findings(doctor.stdout)), doctor.stdout

        for iaid in every_id:
            uninstall = load_fixture("uninstall_nodesdk.json")
            uninstall["uninstallData"]["installedApp"]["installedAppId"] = iaid
            assert send(uninstall).json() == {"uninstallData": {}}
        store = RedisStore(make_redis_client(redis_cluster_url), TokenCipher.from_env_value(TOKEN_KEY))
        try:
            assert not set(store.installed_app_ids()) & set(every_id)
        finally:
            store.close()
        assert "Traceback" not in server.output() and '"status": 500' not in server.output()
    finally:
        server.stop()


def test_writes_wait_for_the_slots_own_replica(redis_cluster_url, cipher):
    store = RedisStore(make_redis_client(redis_cluster_url), cipher, wait_replicas=1)
    greedy = RedisStore(make_redis_client(redis_cluster_url), cipher, wait_replicas=2)
    try:
        for iaid in (str(uuid.uuid4()) for _ in range(6)):  # spread over the primaries
            assert store.update(iaid, {"locale": "en"}) == 1
            assert store.claim(uuid.uuid4().hex * 2, owner="o", lease_seconds=60,
                               installed_app_id=iaid) is ReplayState.CLAIMED
            store.issue(iaid, {"verifier": "v"}, ttl_seconds=60)
            store.delete(iaid)
        store.ping()
        with pytest.raises(StoreUnavailable) as caught:  # each primary has one replica, not two
            greedy.update(str(uuid.uuid4()), {"locale": "en"})
        assert caught.value.detail == "redis: WAIT confirmed 1 of 2 replicas"
    finally:
        store.close()
        greedy.close()


def test_concurrent_claims_on_the_cluster_are_exactly_once(redis_cluster_url, cipher):
    stores = [RedisStore(make_redis_client(redis_cluster_url), cipher) for _ in range(4)]
    markers = [uuid.uuid4().hex * 2 for _ in range(20)]
    wins: list[str] = []
    lock = threading.Lock()

    def claim_all(store: RedisStore) -> None:
        for marker in markers:
            if store.claim(marker, owner=uuid.uuid4().hex, lease_seconds=60) is ReplayState.CLAIMED:
                with lock:
                    wins.append(marker)

    threads = [threading.Thread(target=claim_all, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert sorted(wins) == sorted(markers)
