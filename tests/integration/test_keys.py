"""Key resolution: PEM loading, legacy fingerprints, and the D-matrix against a loopback key server."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import struct
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from smartapp.errors import KeyUnavailable, SignatureError
from smartapp.keys import KeyResolver, load_public_key, openssh_md5_fingerprint
from smartapp.signature import Verifier
from smartapp.testing import Reply
from testbed.keyserver import GARBAGE_PEM, KeyServer, certificate_pem
from tests.conftest import LOCAL_FIXTURES
from tests.support.clock import FakeClock
from tests.support.key_server import key_id, server  # noqa: F401 - `server` is the loopback key server fixture

SIGNED = LOCAL_FIXTURES / "signed"
LEGACY_KEY_ID = "/SmartThings/dd:41:39:60:b2:a3:32:0e:d4:79:39:a3:f1:ee:bd:ac"


def same_key(a, b) -> bool:
    return a.public_numbers() == b.public_numbers()


@pytest.fixture
def attacker():
    """A listener that only counts connections: any connection here is an SSRF.

    A KeyServer with nothing published is such a LoopbackServer, and it stops quickly."""
    listener = KeyServer().start()
    yield listener
    listener.stop()


@pytest.fixture
def clock() -> FakeClock:
    # Real time: TestKey certificates are valid from a day ago to 30 days ahead.
    return FakeClock(time.time())


@pytest.fixture
def make_resolver(server, clock):
    def make(**overrides) -> KeyResolver:
        overrides.setdefault("key_server", server.url)
        overrides.setdefault("clock", clock)
        return KeyResolver(**overrides)

    return make


@pytest.fixture(scope="module")
def small_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def reason_of(call, error=SignatureError) -> str:
    with pytest.raises(error) as caught:
        call()
    return caught.value.reason


# --- load_public_key / fingerprint ---------------------------------------------------------------


def _formats(test_key):
    public = test_key.private_key.public_key()
    spki = test_key.public_key_pem.decode()
    pkcs1 = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    return {
        "spki_str": spki,
        "spki_bytes": spki.encode(),
        "pkcs1": pkcs1,
        "certificate": test_key.certificate_pem,
        "one_line": spki.replace("\n", ""),
        "one_line_spaces": spki.replace("\n", " "),
        "literal_backslash_n": spki.replace("\n", "\\n"),
        "crlf": spki.replace("\n", "\r\n"),
        "surrounding_text": "key from workspace:\n" + spki + "\nthanks",
        "certificate_one_line": test_key.certificate_pem.decode().replace("\n", ""),
    }


@pytest.mark.parametrize(
    "form",
    ["spki_str", "spki_bytes", "pkcs1", "certificate", "one_line", "one_line_spaces", "literal_backslash_n",
     "crlf", "surrounding_text", "certificate_one_line"],
)
def test_load_public_key_accepts_pasted_forms(test_key, form):
    loaded = load_public_key(_formats(test_key)[form])
    assert same_key(loaded, test_key.private_key.public_key())


def _bad_inputs(small_key, ec_key, test_key):
    ec_pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    small_pem = small_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = test_key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    spki = test_key.public_key_pem.decode()
    return {
        "empty": ("", "no PEM block"),
        "garbage": ("hello world", "no PEM block"),
        "garbage_pem": (GARBAGE_PEM, "could not be loaded"),
        "truncated": (spki[:200] + "\n-----END PUBLIC KEY-----\n", "could not be loaded"),
        "mismatched_labels": (spki.replace("END PUBLIC KEY", "END CERTIFICATE"), "no PEM block"),
        "non_ascii": ("-----BEGIN PUBLIC KEY-----\nMIIé\n-----END PUBLIC KEY-----".encode(), "not ASCII"),
        "private_key": (private_pem, "private key"),
        "ec_key": (ec_pem, "RSA"),
        "rsa_1024": (small_pem, "2048"),
        "dsa_label": ("-----BEGIN DSA PARAMETERS-----\nAAAA\n-----END DSA PARAMETERS-----", "unsupported PEM"),
    }


@pytest.mark.parametrize(
    "name",
    ["empty", "garbage", "garbage_pem", "truncated", "mismatched_labels", "non_ascii", "private_key", "ec_key",
     "rsa_1024", "dsa_label"],
)
def test_load_public_key_rejects_with_clear_message(small_key, ec_key, test_key, name):
    text, message = _bad_inputs(small_key, ec_key, test_key)[name]
    with pytest.raises(ValueError, match=message):
        load_public_key(text)


def test_legacy_fingerprint_matches_fixture_key_id():
    key = load_public_key((SIGNED / "legacy_public_key.pem").read_bytes())
    headers = json.loads((SIGNED / "legacy_config_init_sig_pass.json").read_text())["headers"]
    assert f'keyId="{LEGACY_KEY_ID}"' in headers["Authorization"]
    assert "/SmartThings/" + openssh_md5_fingerprint(key) == LEGACY_KEY_ID


def test_fingerprint_is_md5_of_ssh_rsa_blob(test_key):
    """Independent re-computation from RFC 4253 §6.6 wire format, not from cryptography's encoder."""
    numbers = test_key.private_key.public_key().public_numbers()

    def mpint(value: int) -> bytes:
        raw = value.to_bytes((value.bit_length() + 8) // 8, "big")  # leading zero byte if top bit set
        return struct.pack(">I", len(raw)) + raw

    blob = struct.pack(">I", 7) + b"ssh-rsa" + mpint(numbers.e) + mpint(numbers.n)
    digest = hashlib.md5(blob).hexdigest()
    expected = ":".join(digest[i : i + 2] for i in range(0, 32, 2))
    assert openssh_md5_fingerprint(test_key.private_key.public_key()) == expected


# --- legacy /SmartThings/ ids --------------------------------------------------------------------


def test_legacy_key_id_uses_configured_key_without_network(make_resolver, server):
    key = load_public_key((SIGNED / "legacy_public_key.pem").read_bytes())
    resolver = make_resolver(configured_key=key)
    assert resolver.resolve(LEGACY_KEY_ID) is key
    assert server.connections == 0


@pytest.mark.parametrize(
    "key_id",
    [
        "/SmartThings/00:41:39:60:b2:a3:32:0e:d4:79:39:a3:f1:ee:bd:ac",
        LEGACY_KEY_ID.upper().replace("/SMARTTHINGS/", "/SmartThings/"),
        LEGACY_KEY_ID + ":00",
        "/SmartThings/",
    ],
)
def test_legacy_key_id_with_other_fingerprint_is_unknown(make_resolver, server, key_id):
    key = load_public_key((SIGNED / "legacy_public_key.pem").read_bytes())
    assert reason_of(lambda: make_resolver(configured_key=key).resolve(key_id)) == "unknown_key"
    assert server.connections == 0


def test_legacy_key_id_without_configured_key_is_unknown(make_resolver, server):
    assert reason_of(lambda: make_resolver().resolve(LEGACY_KEY_ID)) == "unknown_key"
    assert server.connections == 0


# --- fetching ------------------------------------------------------------------------------------


@pytest.mark.parametrize("served", ["certificate", "spki"])
def test_fetches_once_and_caches(make_resolver, server, test_key, served):
    pem = test_key.certificate_pem if served == "certificate" else test_key.public_key_pem
    server.publish(test_key.key_id, pem)
    resolver = make_resolver()
    first = resolver.resolve(test_key.key_id)
    assert same_key(first, test_key.private_key.public_key())
    assert resolver.resolve(test_key.key_id) is first
    assert server.fetches(test_key.key_id) == 1
    call = server.calls_to("GET")[0]
    assert call.path == test_key.key_id


def test_real_padlock_certificate_is_accepted_at_its_time(server):
    """The real key.smartthings.com answer (core SDK get.ts), served under its real keyId."""
    real_id = "/pl/useast2/1b-0d-f2-69-ad-fb-1b-c4-4e-ac-5a-1f-f7-b6-dd-a9-c4-e8-c8-98"
    server.publish(real_id, (SIGNED / "padlock_key_certificate.pem").read_bytes())
    then = FakeClock(1585056217.0)  # the Date of the signed padlock request
    assert KeyResolver(key_server=server.url, clock=then).resolve(real_id).key_size == 2048
    today = KeyResolver(key_server=server.url, clock=time.time)
    assert reason_of(lambda: today.resolve(real_id)) == "expired_key"


@pytest.mark.parametrize(
    "bad",
    ["https://key.smartthings.com/keys", "ftp://key.smartthings.com", "https://user@key.smartthings.com",
     "key.smartthings.com", "https://key.smartthings.com?x=1", "https://key.smartthings.com#x"],
)
def test_key_server_must_be_scheme_and_host(bad):
    with pytest.raises(ValueError):
        KeyResolver(key_server=bad)


# --- hostile keyIds never become URLs -----------------------------------------------------------

HOSTILE = [
    "@{attacker}/x",
    ".{attacker}/x",
    "//{attacker}/x",
    "http://{attacker}/x",
    ":{port}/x",
    "/pl/test1/00@{attacker}",
    "/pl/test1/../../x",
    "/pl/test1/%2e%2e/00",
    "/pl/%2e%2e/00",
    "/pl/test1/00?x=1",
    "/pl/test1/00#x",
    "/pl/test1/00\r\nHost: {attacker}",
    "/pl/test1/00\n",
    "/pl/test1/00\x00",
    "/pl/tést/00",
    "/pl/test1/0ä",
    "/pl/test1/" + "-".join(["00"] * 33),
    "/pl/" + "a" * 33 + "/00",
    "/pl/TEST1/00",
    "/pl/test_1/00",
    "/pl/test1/0",
    "/pl/test1/000",
    "/pl/test1/00-",
    "/pl/test1/00--00",
    "/pl/test1/00/00",
    "/pl/test1/",
    "/pl//00",
    " /pl/test1/00",
    "/pl/test1/00 ",
    "/PL/test1/00",
    "pl/test1/00",
    "/pl/test1/gg",
    "/SmartThingsX/dd:41",
    "",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_key_id_is_refused_without_any_connection(make_resolver, server, attacker, template):
    port = attacker.url.rsplit(":", 1)[1]
    hostile = template.format(attacker=f"127.0.0.1:{port}", port=port)
    assert reason_of(lambda: make_resolver().resolve(hostile)) == "invalid_key_id"
    assert attacker.connections == 0
    assert server.connections == 0


def test_hostile_key_id_would_reach_attacker_if_concatenated(server, attacker):
    """Control for the test above: naive concatenation really does change the host."""
    import requests

    port = attacker.url.rsplit(":", 1)[1]
    try:
        requests.get(server.url + f"@127.0.0.1:{port}/x", timeout=2)
    except requests.RequestException:
        pass
    assert attacker.connections == 1


# --- floods, cheap checks first, negative cache ----------------------------------------------


def test_a_clock_read_before_waiting_for_the_lock_cannot_refill_the_budget_twice(server):
    """A resolve that read the time, then waited for the lock, must not move the bucket's clock back."""
    now = [0.0]
    late_readers: dict[str, tuple[threading.Event, float]] = {}

    def clock() -> float:
        name = threading.current_thread().name
        if name in late_readers:  # this thread reads the time, then is held up before the lock
            released, read_at = late_readers.pop(name)
            released.wait()
            return read_at
        return now[0]

    resolver = KeyResolver(key_server=server.url, clock=clock, fetch_budget=1, fetch_refill_per_second=1.0)

    def outcome(n: int) -> str:
        try:
            resolver.resolve(key_id(n))
        except (SignatureError, KeyUnavailable) as error:
            return error.reason
        return "resolved"

    assert outcome(1) == "unknown_key"  # spends the one fetch
    released = threading.Event()
    late_readers["late"] = (released, 0.5)
    late = threading.Thread(target=outcome, args=(2,), name="late")
    late.start()
    now[0] = 1.0
    assert outcome(3) == "unknown_key"  # one second refilled one fetch
    released.set()
    late.join()
    now[0] = 1.5
    outcome(4)
    assert server.total_fetches == 2  # 1 + 1.5 s x 1/s allows two fetches by now, not three


def test_flood_of_unknown_ids_is_bounded_by_fetch_budget(make_resolver, server, clock, test_key, caplog):
    server.publish(test_key.key_id, test_key.certificate_pem)
    resolver = make_resolver(fetch_budget=6, fetch_refill_per_second=1.0)
    legit = resolver.resolve(test_key.key_id)  # uses one token
    outcomes = {"unknown_key": 0, "key_fetch_throttled": 0}
    with caplog.at_level(logging.WARNING, logger="smartapp.keys"):
        for n in range(1, 41):
            try:
                resolver.resolve(key_id(n))
            except (SignatureError, KeyUnavailable) as exc:
                outcomes[exc.reason] += 1
    assert outcomes == {"unknown_key": 5, "key_fetch_throttled": 35}
    assert server.total_fetches == 6
    # A flood of throttled requests must not become a flood of log lines.
    assert sum("key_fetch_throttled" in r.getMessage() for r in caplog.records) == 1
    # Legitimate traffic with a cached key is unaffected while the budget is empty.
    assert resolver.resolve(test_key.key_id) is legit

    # Negative cache: every refused id was fetched at most once.
    for n in range(1, 6):
        assert reason_of(lambda: resolver.resolve(key_id(n))) == "unknown_key"
    assert all(server.fetches(key_id(n)) <= 1 for n in range(1, 41))
    assert server.total_fetches == 6

    # The bucket refills with the (injected) clock: 3 s buys 3 fetches.
    clock.advance(3)
    for n in range(100, 110):
        with pytest.raises((SignatureError, KeyUnavailable)):
            resolver.resolve(key_id(n))
    assert server.total_fetches == 9


def test_stale_date_or_bad_digest_never_fetch(server, signer, test_key):
    """A forged request with an unknown keyId is refused by the cheap checks, with 0 fetches."""
    resolver = KeyResolver(key_server=server.url)
    verifier = Verifier(resolve_key=resolver.resolve)
    body = b'{"lifecycle":"EVENT"}'

    def headers(**overrides):
        return {k.lower(): v for k, v in signer.headers(body, key_id=key_id(7), **overrides).items()}

    stale = headers(now=time.time() - 3600)
    assert reason_of(lambda: verifier.verify(method="POST", headers=stale, body=body)) == "date_out_of_window"
    bad_digest = headers(digest="SHA256=" + base64.b64encode(b"\x00" * 32).decode())
    assert reason_of(lambda: verifier.verify(method="POST", headers=bad_digest, body=body)) == "digest_mismatch"
    hmac_alg = headers(algorithm="hmac-sha256")
    assert reason_of(lambda: verifier.verify(method="POST", headers=hmac_alg, body=body)) == "unsupported_algorithm"
    assert server.connections == 0
    # Control: the same request with a fresh date and a matching digest does reach the key server.
    fresh = headers()
    assert reason_of(lambda: verifier.verify(method="POST", headers=fresh, body=body)) == "unknown_key"
    assert server.fetches(key_id(7)) == 1


def test_verifier_end_to_end_with_fetched_key(server, signer, test_key):
    server.publish(test_key.key_id, test_key.certificate_pem)
    verifier = Verifier(resolve_key=KeyResolver(key_server=server.url).resolve)
    body = b'{"lifecycle":"EVENT"}'
    headers = {k.lower(): v for k, v in signer.headers(body).items()}
    assert verifier.verify(method="POST", headers=headers, body=body).key_id == test_key.key_id
    assert verifier.verify(method="POST", headers=headers, body=body).key_id == test_key.key_id
    assert server.fetches(test_key.key_id) == 1


def test_404_is_unknown_and_negative_cached(make_resolver, server, clock):
    server.mode = "404"
    resolver = make_resolver(negative_ttl_seconds=300)
    unknown = key_id(1)
    assert reason_of(lambda: resolver.resolve(unknown)) == "unknown_key"
    assert reason_of(lambda: resolver.resolve(unknown)) == "unknown_key"
    assert server.fetches(unknown) == 1
    clock.advance(299)
    assert reason_of(lambda: resolver.resolve(unknown)) == "unknown_key"
    assert server.fetches(unknown) == 1
    clock.advance(2)
    assert reason_of(lambda: resolver.resolve(unknown)) == "unknown_key"
    assert server.fetches(unknown) == 2


def test_negative_cache_is_bounded(make_resolver, server):
    resolver = make_resolver(max_entries=2)
    for n in (1, 2, 3):
        with pytest.raises(SignatureError):
            resolver.resolve(key_id(n))
    with pytest.raises(SignatureError):
        resolver.resolve(key_id(1))  # evicted by 3, so asked again
    with pytest.raises(SignatureError):
        resolver.resolve(key_id(3))  # still negative-cached
    assert [server.fetches(key_id(n)) for n in (1, 2, 3)] == [2, 1, 1]


# --- key server trouble -------------------------------------------------------------------------


@pytest.fixture
def down(server):
    """Apply one kind of key-server failure."""

    def apply(kind: str) -> None:
        if kind == "stopped":
            server.stop()
        else:
            server.mode = kind
            server.stall_seconds = 3.0

    return apply


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["500", "stall", "redirect", "stopped", "huge"])
def test_cached_key_is_served_stale_while_server_is_down(make_resolver, server, clock, test_key, down, kind):
    server.publish(test_key.key_id, test_key.certificate_pem)
    resolver = make_resolver(ttl_seconds=60, negative_ttl_seconds=300)
    key = resolver.resolve(test_key.key_id)
    clock.advance(61)
    down(kind)
    start = time.monotonic()
    assert resolver.resolve(test_key.key_id) is key
    assert time.monotonic() - start < 2.5
    fetched = server.fetches(test_key.key_id)
    assert fetched == (1 if kind == "stopped" else 2)
    # While it is down, later requests use the stale key without paying another timeout.
    start = time.monotonic()
    assert resolver.resolve(test_key.key_id) is key
    assert time.monotonic() - start < 0.1
    assert server.fetches(test_key.key_id) == fetched


def test_stale_key_is_not_served_past_certificate_not_after(make_resolver, server, clock, test_key):
    server.publish(test_key.key_id, test_key.certificate_pem)
    resolver = make_resolver(ttl_seconds=60)
    resolver.resolve(test_key.key_id)
    clock.advance(31 * 86400)  # TestKey certificates expire after 30 days
    server.mode = "500"
    assert reason_of(lambda: resolver.resolve(test_key.key_id), KeyUnavailable) == "key_server_status_500"


def test_404_on_refresh_drops_the_cached_key(make_resolver, server, clock, test_key):
    """The key server is the authority: an id it no longer knows is revoked, not served stale."""
    server.publish(test_key.key_id, test_key.certificate_pem)
    resolver = make_resolver(ttl_seconds=60)
    resolver.resolve(test_key.key_id)
    clock.advance(61)
    server.unpublish(test_key.key_id)
    assert reason_of(lambda: resolver.resolve(test_key.key_id)) == "unknown_key"
    assert reason_of(lambda: resolver.resolve(test_key.key_id)) == "unknown_key"
    assert server.fetches(test_key.key_id) == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("stopped", "key_server_unreachable"),
        ("stall", "key_fetch_timeout"),
        ("500", "key_server_status_500"),
        ("redirect", "key_server_status_302"),
    ],
)
def test_unknown_key_with_server_down_is_unavailable_fast(make_resolver, server, down, kind, reason):
    """A key server that does not answer: 503 quickly, no retries."""
    down(kind)
    resolver = make_resolver()
    start = time.monotonic()
    assert reason_of(lambda: resolver.resolve(key_id(5)), KeyUnavailable) == reason
    assert time.monotonic() - start < 2.5
    assert server.fetches(key_id(5)) == (0 if kind == "stopped" else 1)


def test_redirect_is_not_followed(make_resolver, server, attacker, test_key):
    """A 302 to another host must not produce a connection there."""
    server.publish(test_key.key_id, test_key.certificate_pem)
    server.mode = "redirect"
    server.redirect_to = attacker.url + "/"
    attacker.route("GET", r"/.*", lambda call, match: Reply(200, test_key.certificate_pem))
    with pytest.raises(KeyUnavailable):
        make_resolver().resolve(test_key.key_id)
    assert attacker.connections == 0


@pytest.mark.parametrize("kind", ["huge", "huge_unsized"])
def test_oversized_answer_is_capped(make_resolver, server, test_key, kind):
    """The body starts with a valid PEM, so only the size cap stands between it and acceptance."""
    server.publish(test_key.key_id, test_key.certificate_pem)
    server.mode = kind
    server.huge_bytes = 50 << 20
    start = time.monotonic()
    resolver = make_resolver()
    assert reason_of(lambda: resolver.resolve(test_key.key_id), KeyUnavailable) == "key_response_too_large"
    assert time.monotonic() - start < 1.0


def test_size_cap_leaves_room_for_a_real_certificate(make_resolver, server, test_key):
    server.publish(test_key.key_id, test_key.certificate_pem)
    server.mode = "huge"
    server.huge_bytes = 100
    make_resolver().resolve(test_key.key_id)  # ~1.1 KB cert + 100 B of padding is under 16 KiB


@pytest.mark.slow
def test_slow_drip_is_cut_off_by_the_total_deadline(make_resolver, server, test_key):
    """A byte every 0.2 s never trips the per-read timeout; the wall-clock deadline must."""
    server.publish(test_key.key_id, test_key.certificate_pem)
    server.mode = "slow"
    server.drip_interval = 0.2
    resolver = make_resolver(connect_timeout=0.5, read_timeout=0.5)
    start = time.monotonic()
    assert reason_of(lambda: resolver.resolve(test_key.key_id), KeyUnavailable) == "key_fetch_timeout"
    assert time.monotonic() - start < 0.5 + 0.5 + 0.3
    # The fetching thread itself stopped at the deadline; it is not left reading the drip.
    time.sleep(0.1)
    assert not [t for t in threading.enumerate() if t.name == "smartapp-key-fetch"]


# --- what the key server returns -----------------------------------------------------------------


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)


def test_expired_certificate_is_refused(make_resolver, server, clock):
    server.mode = "expired"
    resolver = make_resolver()
    assert reason_of(lambda: resolver.resolve(key_id(3))) == "expired_key"
    assert reason_of(lambda: resolver.resolve(key_id(3))) == "expired_key"
    assert server.fetches(key_id(3)) == 1


def test_certificate_expired_by_injected_clock_is_refused(make_resolver, server, clock, test_key):
    server.publish(test_key.key_id, test_key.certificate_pem)
    clock.advance(31 * 86400)
    assert reason_of(lambda: make_resolver().resolve(test_key.key_id)) == "expired_key"


def test_not_yet_valid_certificate_is_refused_until_valid(make_resolver, server, clock, test_key):
    pem = certificate_pem(
        test_key.private_key, not_before=_utc(clock.now + 60), not_after=_utc(clock.now + 86400)
    )
    server.publish(test_key.key_id, pem)
    resolver = make_resolver(negative_ttl_seconds=300)
    assert reason_of(lambda: resolver.resolve(test_key.key_id)) == "expired_key"
    clock.advance(30)
    assert reason_of(lambda: resolver.resolve(test_key.key_id)) == "expired_key"
    assert server.fetches(test_key.key_id) == 1
    # The refusal lasts only until notBefore, not the full negative TTL.
    clock.advance(31)
    assert same_key(resolver.resolve(test_key.key_id), test_key.private_key.public_key())


def test_cache_expires_at_certificate_not_after(make_resolver, server, clock, test_key):
    pem = certificate_pem(test_key.private_key, not_before=_utc(clock.now - 60), not_after=_utc(clock.now + 50))
    server.publish(test_key.key_id, pem)
    resolver = make_resolver(ttl_seconds=86400)
    resolver.resolve(test_key.key_id)
    clock.advance(49)
    resolver.resolve(test_key.key_id)
    assert server.fetches(test_key.key_id) == 1
    clock.advance(2)
    assert reason_of(lambda: resolver.resolve(test_key.key_id)) == "expired_key"
    assert server.fetches(test_key.key_id) == 2


def _unusable_pems(test_key, small_key, ec_key, clock):
    def cert(key):
        return certificate_pem(key, not_before=_utc(clock.now - 60), not_after=_utc(clock.now + 86400))

    return {
        "garbage": GARBAGE_PEM,
        "not_pem": b"<html>Service temporarily unavailable</html>",
        "empty": b"",
        "rsa_1024_cert": cert(small_key),
        "ec_cert": cert(ec_key),
        "private_key": test_key.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        "binary": bytes(range(256)),
    }


@pytest.mark.parametrize(
    "name", ["garbage", "not_pem", "empty", "rsa_1024_cert", "ec_cert", "private_key", "binary"]
)
def test_unusable_answer_is_unknown_and_negative_cached(make_resolver, server, clock, test_key, small_key,
                                                        ec_key, name):
    server.publish(test_key.key_id, _unusable_pems(test_key, small_key, ec_key, clock)[name])
    resolver = make_resolver()
    assert reason_of(lambda: resolver.resolve(test_key.key_id)) == "unknown_key"
    assert reason_of(lambda: resolver.resolve(test_key.key_id)) == "unknown_key"
    assert server.fetches(test_key.key_id) == 1


def test_garbage_mode(make_resolver, server):
    server.mode = "garbage"
    assert reason_of(lambda: make_resolver().resolve(key_id(9))) == "unknown_key"


# --- single flight and cache bounds ---------------------------------------------------------------


def test_concurrent_first_requests_cause_one_fetch(make_resolver, server, test_key):
    server.publish(test_key.key_id, test_key.certificate_pem)
    server.latency = 0.3
    resolver = make_resolver()
    barrier = threading.Barrier(50)
    results: list = []
    lock = threading.Lock()

    def worker():
        barrier.wait()
        key = resolver.resolve(test_key.key_id)
        with lock:
            results.append(key)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 50
    assert all(same_key(key, test_key.private_key.public_key()) for key in results)
    assert server.fetches(test_key.key_id) == 1


def test_concurrent_failures_share_one_fetch(make_resolver, server):
    server.mode = "500"
    server.latency = 0.3
    resolver = make_resolver()
    barrier = threading.Barrier(20)
    reasons: list[str] = []
    lock = threading.Lock()

    def worker():
        barrier.wait()
        try:
            resolver.resolve(key_id(11))
        except KeyUnavailable as exc:
            with lock:
                reasons.append(exc.reason)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert reasons == ["key_server_status_500"] * 20
    assert server.fetches(key_id(11)) == 1


def test_positive_cache_is_a_bounded_lru(make_resolver, server, test_key):
    ids = [key_id(n) for n in range(5)]
    for each in ids:
        server.publish(each, test_key.certificate_pem)
    resolver = make_resolver(max_entries=3)
    for each in ids:
        resolver.resolve(each)
    resolver.resolve(ids[2])  # refresh 2's recency: order is now 3, 4, 2
    resolver.resolve(ids[0])  # evicted earlier: fetched again, evicting 3
    resolver.resolve(ids[4])
    resolver.resolve(ids[3])  # evicted by 0: fetched again
    assert [server.fetches(each) for each in ids] == [2, 1, 1, 2, 1]


def test_ttl_expiry_with_injected_clock(make_resolver, server, clock, test_key):
    server.publish(test_key.key_id, test_key.certificate_pem)
    resolver = make_resolver(ttl_seconds=100)
    resolver.resolve(test_key.key_id)
    clock.advance(99)
    resolver.resolve(test_key.key_id)
    assert server.fetches(test_key.key_id) == 1
    clock.advance(2)
    resolver.resolve(test_key.key_id)
    assert server.fetches(test_key.key_id) == 2


# --- logging ------------------------------------------------------------------------------------


def test_logs_escape_key_ids_and_never_carry_bodies(make_resolver, server, caplog, test_key):
    canary = b"-----BEGIN CERTIFICATE-----\nQ0FOQVJZLUJPRFktMTIzNDU=\n-----END CERTIFICATE-----\n"
    server.publish(key_id(21), canary)
    resolver = make_resolver()
    with caplog.at_level(logging.DEBUG, logger="smartapp.keys"):
        with pytest.raises(SignatureError):
            resolver.resolve(key_id(21))
        with pytest.raises(SignatureError):
            resolver.resolve("/pl/test1/00\r\nX-Injected: 1")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "Q0FOQVJZ" not in text
    assert "\r\nX-Injected" not in text
    assert "'/pl/test1/00\\r\\nX-Injected: 1'" in text
    assert "reason=unknown_key" in text and key_id(21) in text
    assert all(record.levelno == logging.WARNING for record in caplog.records if "reason=" in record.getMessage())
