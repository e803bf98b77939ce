"""HTTP-signature verifier: real SmartThings vectors, the A-matrix of forgeries, and check ordering."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.datastructures import EnvironHeaders
from werkzeug.test import EnvironBuilder

from smartapp.errors import KeyUnavailable, SignatureError
from smartapp.keys import KeyResolver, load_public_key
from smartapp.signature import (
    SignatureParams,
    Verifier,
    parse_authorization,
    parse_http_date,
    signing_string,
    verify_rsa,
)
from testbed import signing
from testbed.signing import Signer, http_date
from tests.conftest import LOCAL_FIXTURES

SIGNED = LOCAL_FIXTURES / "signed"
NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 UTC
BODY = b'{"lifecycle":"EVENT","executionId":"e-1","eventData":{"installedApp":{"installedAppId":"i-1"}}}'
PRE_KEY_REASONS = {
    "missing_authorization",
    "malformed_authorization",
    "unsupported_algorithm",
    "headers_incomplete",
    "missing_date",
    "malformed_date",
    "date_out_of_window",
    "missing_digest",
    "malformed_digest",
    "unsupported_digest",
    "digest_mismatch",
}


class KeyRecorder:
    """A resolve_key that hands out one key and remembers every keyId it was asked for."""

    def __init__(self, key) -> None:
        self.key = key
        self.asked: list[str] = []

    def __call__(self, key_id: str):
        self.asked.append(key_id)
        return self.key


@pytest.fixture(scope="module")
def attacker_key() -> signing.TestKey:
    return signing.TestKey.generate(region="evil1")


@pytest.fixture(scope="module")
def small_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.fixture
def keys(test_key) -> KeyRecorder:
    return KeyRecorder(test_key.private_key.public_key())


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def signed(signer: Signer, body: bytes = BODY, **overrides) -> dict[str, str]:
    overrides.setdefault("now", NOW)
    return lower(signer.headers(body, **overrides))


def verifier(keys, *, path: str = "/", now: float = NOW) -> Verifier:
    return Verifier(resolve_key=keys, public_path=path, clock=lambda: now)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def reason_of(call) -> str:
    with pytest.raises(SignatureError) as caught:
        call()
    return caught.value.reason


# --- the happy path -------------------------------------------------------------------------------


def test_valid_request_verifies_and_reports_signer(signer, keys, test_key):
    headers = signed(signer)
    result = verifier(keys).verify(method="POST", headers=headers, body=BODY)
    raw_signature = parse_authorization(headers["authorization"]).signature
    assert result.key_id == test_key.key_id
    assert result.signed_at == NOW
    assert result.replay_marker == hashlib.sha256(raw_signature).hexdigest()
    assert b64(raw_signature) not in result.replay_marker
    assert keys.asked == [test_key.key_id]


def test_parse_authorization_returns_decoded_params(signer, test_key):
    headers = signed(signer, signed_headers="(request-target) Digest DATE")
    params = parse_authorization(headers["authorization"])
    assert params == SignatureParams(
        key_id=test_key.key_id,
        signature=params.signature,
        headers=("(request-target)", "digest", "date"),
        algorithm="rsa-sha256",
    )
    assert len(params.signature) == 256  # 2048-bit RSA


@pytest.mark.parametrize("prefix", ["SHA256=", "SHA-256=", "sha-256=", "sha256="])
def test_digest_spellings_accepted(signer, keys, prefix):
    headers = signed(signer, digest_prefix=prefix)
    verifier(keys).verify(method="POST", headers=headers, body=BODY)


@pytest.mark.parametrize("separator", [",", ", "])
def test_digest_list_checks_the_sha256_entry(signer, keys, separator):
    digest = (
        "SHA-512=" + b64(hashlib.sha512(BODY).digest()) + separator
        + "SHA256=" + b64(hashlib.sha256(BODY).digest())
    )
    verifier(keys).verify(method="POST", headers=signed(signer, digest=digest), body=BODY)


def test_algorithm_name_is_case_insensitive(signer, keys):
    verifier(keys).verify(method="POST", headers=signed(signer, algorithm="RSA-SHA256"), body=BODY)


def test_unknown_authorization_params_are_ignored(signer, keys):
    headers = signed(signer)
    headers["authorization"] += ',created="1700000000",foo="bar"'
    verifier(keys).verify(method="POST", headers=headers, body=BODY)


def test_gmt_zone_accepted(signer, keys):
    date = http_date(NOW).replace("UTC", "GMT")
    verifier(keys).verify(method="POST", headers=signed(signer, date=date), body=BODY)


def test_works_with_werkzeug_environ_headers(signer, keys):
    """Production hands over EnvironHeaders, whose .get is case-insensitive."""
    wire = signer.headers(BODY, now=NOW)
    environ = EnvironBuilder(method="POST", path="/", headers=wire, data=BODY).get_environ()
    verifier(keys).verify(method="POST", headers=EnvironHeaders(environ), body=BODY)


@pytest.mark.parametrize(
    ("configured", "signed_path", "ok"),
    [
        ("/", "/", True),
        ("/smartapp", "/smartapp", True),
        ("/smartapp?code=abc", "/smartapp", True),  # NodeSDK #255: the query is not signed
        ("/smartapp?code=abc", "/smartapp?code=abc", False),
        ("/smartapp", "/smartapp/", False),
        ("/smartapp/", "/smartapp", False),
        ("/", "/other", False),
        ("/other", "/", False),
    ],
)
def test_request_target_path_policy(signer, keys, configured, signed_path, ok):
    headers = signed(signer, path=signed_path)
    check = verifier(keys, path=configured)
    if ok:
        check.verify(method="POST", headers=headers, body=BODY)
    else:
        assert reason_of(lambda: check.verify(method="POST", headers=headers, body=BODY)) == "bad_signature"


# --- failure matrix -------------------------------------------------------------------------------


def _hmac_with_certificate(signer: Signer, test_key: signing.TestKey) -> dict[str, str]:
    """An HMAC-SHA256 keyed with the published certificate text (algorithm confusion)."""
    date = http_date(NOW)
    digest = "SHA256=" + b64(hashlib.sha256(BODY).digest())
    message = f"(request-target): post /\ndigest: {digest}\ndate: {date}".encode()
    mac = b64(hmac.new(test_key.certificate_pem, message, hashlib.sha256).digest())
    return signed(signer, date=date, digest=digest, signature=mac, algorithm="hmac-sha256")


def _edit_auth(old: str, new: str, **overrides):
    def build(signer, test_key):
        headers = signed(signer, **overrides)
        assert old in headers["authorization"]
        headers["authorization"] = headers["authorization"].replace(old, new, 1)
        return headers

    return build


def _set(name: str, value: str | None, **overrides):
    def build(signer, test_key):
        headers = signed(signer, **overrides)
        if value is None:
            del headers[name]
        else:
            headers[name] = value
        return headers

    return build


def _append_auth(extra: str):
    def build(signer, test_key):
        headers = signed(signer)
        headers["authorization"] += extra
        return headers

    return build


def _joined(name: str):
    """Two header lines joined with ", " by the WSGI server."""
    def build(signer, test_key):
        headers = signed(signer)
        headers[name] = headers[name] + ", " + headers[name]
        return headers

    return build


def _with(**overrides):
    return lambda signer, test_key: signed(signer, **overrides)


def _attacker(signer, test_key, attacker_key):
    """A genuine RSA signature, but made with the attacker's key under the legitimate keyId."""
    return signed(signer, private_key=attacker_key.private_key)


_SIG = "A" * 344  # base64 length of a 2048-bit signature
_DIGEST = "SHA256=" + b64(hashlib.sha256(BODY).digest())

FAILURES = [
    # The Authorization header itself
    ("no_header", _set("authorization", None), "missing_authorization"),
    ("empty_header", _set("authorization", ""), "missing_authorization"),
    ("bearer", _set("authorization", "Bearer abc.def.ghi"), "malformed_authorization"),
    ("lowercase_scheme", _edit_auth("Signature ", "signature "), "malformed_authorization"),
    ("two_spaces", _edit_auth("Signature ", "Signature  "), "malformed_authorization"),
    ("space_after_comma", _edit_auth('",', '", '), "malformed_authorization"),
    ("unquoted", _edit_auth('algorithm="rsa-sha256"', "algorithm=rsa-sha256"), "malformed_authorization"),
    ("name_with_underscore", _append_auth(',x_y="1"'), "malformed_authorization"),
    ("name_with_digit", _append_auth(',x1="1"'), "malformed_authorization"),
    ("quote_injection", _edit_auth('keyId="', 'keyId="x",keyId="'), "malformed_authorization"),
    ("embedded_quote", _edit_auth('algorithm="rsa-sha256"', 'algorithm="rsa"-sha256"'), "malformed_authorization"),
    ("duplicate_keyid", _append_auth(',keyId="/pl/test1/00"'), "malformed_authorization"),
    ("duplicate_signature", _append_auth(f',signature="{_SIG}"'), "malformed_authorization"),
    ("duplicate_algorithm", _append_auth(',algorithm="rsa-sha256"'), "malformed_authorization"),
    ("trailing_comma", _append_auth(","), "malformed_authorization"),
    ("unclosed_last_value", _edit_auth('algorithm="rsa-sha256"', 'algorithm="rsa-sha256'), "malformed_authorization"),
    ("text_after_last_value", _append_auth('x'), "malformed_authorization"),
    ("empty_name", _append_auth(',="1"'), "malformed_authorization"),
    ("crlf_in_value", _edit_auth('keyId="', 'keyId="\r\nX-Evil: 1'), "malformed_authorization"),
    ("nul_in_value", _edit_auth('keyId="', 'keyId="\x00'), "malformed_authorization"),
    ("non_ascii_value", _edit_auth('keyId="', 'keyId="é'), "malformed_authorization"),
    ("no_keyid", _edit_auth("keyId=", "kid="), "malformed_authorization"),
    ("empty_keyid", _edit_auth('keyId="', 'keyId="",x="'), "malformed_authorization"),
    ("no_signature", _edit_auth("signature=", "sig="), "malformed_authorization"),
    ("no_algorithm", _edit_auth("algorithm=", "alg="), "malformed_authorization"),
    ("signature_not_base64", _with(signature="not*base64!"), "malformed_authorization"),
    ("signature_bad_padding", _with(signature="QUJD="), "malformed_authorization"),
    ("signature_padding_after_whole_group", _with(signature="QUJD===="), "malformed_authorization"),
    ("signature_padding_inside", _with(signature="QQ==QUJD"), "malformed_authorization"),
    ("signature_unpadded", _with(signature="QUJDRA"), "malformed_authorization"),
    ("signature_urlsafe", _with(signature="ab-_" * 86), "malformed_authorization"),
    ("signature_8kb", _with(signature="A" * 8192), "malformed_authorization"),
    ("header_list_duplicate", _with(signed_headers="(request-target) digest date date"), "malformed_authorization"),
    ("header_list_double_space", _with(signed_headers="(request-target)  digest date"), "malformed_authorization"),
    ("header_list_odd_name", _with(signed_headers="(request-target) digest date (created)"), "malformed_authorization"),
    ("joined_authorization", _joined("authorization"), "malformed_authorization"),
    # Algorithm pinning
    ("hmac_with_cert_text", _hmac_with_certificate, "unsupported_algorithm"),
    ("rsa_sha1", _with(algorithm="rsa-sha1"), "unsupported_algorithm"),
    ("hs2019", _with(algorithm="hs2019"), "unsupported_algorithm"),
    ("ecdsa", _with(algorithm="ecdsa-sha256"), "unsupported_algorithm"),
    ("rsa_sha512", _with(algorithm="RSA-SHA512"), "unsupported_algorithm"),
    ("rsa_sha256_padded", _with(algorithm="rsa-sha256 "), "unsupported_algorithm"),
    # A value may start with a comma: it is the value, not a new pair (and then not the algorithm).
    ("value_starting_with_comma", _with(algorithm=",rsa-sha256"), "unsupported_algorithm"),
    # The signed header set
    ("only_date", _with(signed_headers="date"), "headers_incomplete"),
    ("headers_param_absent", _edit_auth(',headers="(request-target) digest date"', ""), "headers_incomplete"),
    ("no_request_target", _with(signed_headers="digest date"), "headers_incomplete"),
    ("no_digest_signed", _with(signed_headers="(request-target) date"), "headers_incomplete"),
    ("no_date_signed", _with(signed_headers="(request-target) digest"), "headers_incomplete"),
    ("extra_signed_header_absent", _with(signed_headers="(request-target) digest date x-extra"), "headers_incomplete"),
    # Date (including whole days off, and joined Date lines)
    ("no_date", _set("date", None), "missing_date"),
    ("empty_date", _set("date", ""), "missing_date"),
    ("rfc850", _with(date="Tuesday, 14-Nov-23 22:13:20 GMT"), "malformed_date"),
    ("asctime", _with(date="Tue Nov 14 22:13:20 2023"), "malformed_date"),
    ("numeric_zone", _with(date="Tue, 14 Nov 2023 22:13:20 +0000"), "malformed_date"),
    ("est_zone", _with(date="Tue, 14 Nov 2023 17:13:20 EST"), "malformed_date"),
    ("iso8601", _with(date="2023-11-14T22:13:20Z"), "malformed_date"),
    ("epoch", _with(date="1700000000"), "malformed_date"),
    ("garbage_date", _with(date="yesterday"), "malformed_date"),
    ("single_digit_day", _with(date="Tue, 4 Nov 2023 22:13:20 UTC"), "malformed_date"),
    ("lowercase_month", _with(date="Tue, 14 nov 2023 22:13:20 UTC"), "malformed_date"),
    ("feb_31", _with(date="Fri, 31 Feb 2023 22:13:20 UTC"), "malformed_date"),
    ("hour_25", _with(date="Tue, 14 Nov 2023 25:13:20 UTC"), "malformed_date"),
    ("second_60", _with(date="Tue, 14 Nov 2023 22:13:60 UTC"), "malformed_date"),
    ("trailing_newline", _with(date=http_date(NOW) + "\n"), "malformed_date"),
    ("joined_date", _joined("date"), "malformed_date"),
    ("year_1900", _with(date="Mon, 01 Jan 1900 00:00:00 UTC"), "date_out_of_window"),
    ("year_9999", _with(date="Fri, 31 Dec 9999 23:59:59 UTC"), "date_out_of_window"),
    ("old_301", _with(now=NOW - 301), "date_out_of_window"),
    ("ahead_301", _with(now=NOW + 301), "date_out_of_window"),
    *[
        (f"days_{days}_{sign}{shift}", _with(now=NOW + sign * days * 86400 + shift), "date_out_of_window")
        for days in (1, 7, 365)
        for sign in (-1, 1)
        for shift in (-10, 0, 10)
    ],
    # Digest
    ("no_digest", _set("digest", None), "missing_digest"),
    ("empty_digest", _set("digest", ""), "missing_digest"),
    ("digest_no_equals", _with(digest="SHA256"), "malformed_digest"),
    ("digest_empty_alg", _with(digest="=" + _DIGEST.split("=", 1)[1]), "malformed_digest"),
    ("digest_not_base64", _with(digest="SHA256=not*base64!"), "malformed_digest"),
    ("digest_short", _with(digest="SHA256=" + b64(b"\x00" * 16)), "malformed_digest"),
    ("digest_extra_padding", _with(digest=_DIGEST + "===="), "malformed_digest"),
    ("digest_empty_value", _with(digest="SHA256="), "malformed_digest"),
    ("digest_trailing_comma", _with(digest=_DIGEST + ","), "malformed_digest"),
    ("digest_two_sha256", _with(digest=_DIGEST + ",SHA-256=" + b64(b"\x01" * 32)), "malformed_digest"),
    ("joined_digest", _joined("digest"), "malformed_digest"),
    ("digest_md5", _with(digest="MD5=" + b64(hashlib.md5(BODY).digest())), "unsupported_digest"),
    ("digest_sha1", _with(digest="SHA=" + b64(hashlib.sha1(BODY).digest())), "unsupported_digest"),
    ("digest_sha512", _with(digest="SHA-512=" + b64(hashlib.sha512(BODY).digest())), "unsupported_digest"),
    ("digest_of_other_body", _with(digest="SHA256=" + b64(hashlib.sha256(b"{}").digest())), "digest_mismatch"),
    # The RSA step
    ("random_signature", _with(signature=b64(bytes(range(256)))), "bad_signature"),
    ("short_signature", _with(signature=b64(b"\x01" * 32)), "bad_signature"),
    ("attacker_key", _attacker, "bad_signature"),
    ("signed_other_path", _with(path="/other"), "bad_signature"),
    ("signed_get", _with(method="get"), "bad_signature"),
    ("signed_with_query", _with(path="/?x=1"), "bad_signature"),
    ("date_changed_after_signing", _set("date", http_date(NOW + 1)), "bad_signature"),
    ("digest_respelled_after_signing", _set("digest", _DIGEST.replace("SHA256=", "SHA-256=")), "bad_signature"),
]


@pytest.mark.parametrize(("build", "reason"), [pytest.param(b, r, id=i) for i, b, r in FAILURES])
def test_forgeries_are_rejected(signer, keys, test_key, attacker_key, build, reason):
    if build is _attacker:
        headers = build(signer, test_key, attacker_key)
    else:
        headers = build(signer, test_key)
    got = reason_of(lambda: verifier(keys).verify(method="POST", headers=headers, body=BODY))
    assert got == reason
    if reason in PRE_KEY_REASONS:
        assert keys.asked == [], "the key must not be resolved before the cheap checks pass"


def test_body_swapped_after_signing_is_rejected(signer, keys):
    """A body swapped under a valid signature: the case every SmartThings SDK misses."""
    headers = signed(signer)
    swapped = BODY.replace(b"i-1", b"i-2")
    assert reason_of(lambda: verifier(keys).verify(method="POST", headers=headers, body=swapped)) == "digest_mismatch"
    assert keys.asked == []


@pytest.mark.parametrize("offset", [-300, -299, 0, 299, 300])
def test_skew_inside_window_accepted(signer, keys, offset):
    """299 s old / ahead (and the 300 s edge) still verify."""
    verifier(keys).verify(method="POST", headers=signed(signer, now=NOW + offset), body=BODY)


@pytest.mark.parametrize("skew", [60, 600])
def test_skew_is_configurable(signer, keys, skew):
    check = Verifier(resolve_key=keys, max_skew_seconds=skew, clock=lambda: NOW)
    check.verify(method="POST", headers=signed(signer, now=NOW - skew), body=BODY)
    late = signed(signer, now=NOW - skew - 1)
    assert reason_of(lambda: check.verify(method="POST", headers=late, body=BODY)) == "date_out_of_window"


def test_clock_is_read_per_request(signer, keys):
    now = [NOW]
    check = Verifier(resolve_key=keys, clock=lambda: now[0])
    headers = signed(signer)
    check.verify(method="POST", headers=headers, body=BODY)
    now[0] += 301
    assert reason_of(lambda: check.verify(method="POST", headers=headers, body=BODY)) == "date_out_of_window"


def test_a_key_that_is_not_rsa_is_refused_even_after_rsa_keys_were_used(signer, keys):
    from cryptography.hazmat.primitives.asymmetric import ec

    headers = signed(signer)
    assert verifier(keys).verify(method="POST", headers=headers, body=BODY).key_id  # an RSA key's class is known
    not_rsa = verifier(KeyRecorder(ec.generate_private_key(ec.SECP256R1()).public_key()))
    assert reason_of(lambda: not_rsa.verify(method="POST", headers=headers, body=BODY)) == "unknown_key"


def test_small_rsa_key_from_resolver_is_refused(signer, small_key):
    headers = signed(signer, private_key=small_key)
    check = verifier(KeyRecorder(small_key.public_key()))
    assert reason_of(lambda: check.verify(method="POST", headers=headers, body=BODY)) == "unknown_key"


@pytest.mark.parametrize("error", [SignatureError("unknown_key"), SignatureError("invalid_key_id"),
                                   KeyUnavailable("key_fetch_throttled")])
def test_resolver_errors_pass_through_unchanged(signer, error):
    def resolve(key_id):
        raise error

    with pytest.raises(type(error)) as caught:
        verifier(resolve).verify(method="POST", headers=signed(signer), body=BODY)
    assert caught.value is error


def test_non_latin1_signed_header_value_is_refused(signer, keys):
    headers = signed(signer, signed_headers="(request-target) digest date x-extra")
    headers["x-extra"] = "snowman ☃"
    assert reason_of(lambda: verifier(keys).verify(method="POST", headers=headers, body=BODY)) == "bad_signature"


# --- real vectors ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def padlock():
    headers = json.loads((SIGNED / "padlock_post_headers.json").read_text())["headers"]
    certificate = x509.load_pem_x509_certificate((SIGNED / "padlock_key_certificate.pem").read_bytes())
    return headers, certificate.public_key()


def test_padlock_vector_verifies(padlock):
    """A real ST_PADLOCK signature made by the SmartThings cloud (core SDK post.ts)."""
    headers, key = padlock
    params = parse_authorization(headers["authorization"])
    assert params.algorithm == "rsa-sha256"
    assert params.key_id == "/pl/useast2/1b-0d-f2-69-ad-fb-1b-c4-4e-ac-5a-1f-f7-b6-dd-a9-c4-e8-c8-98"
    message = signing_string(method="POST", public_path="/", headers=headers, signed=params.headers)
    assert message.startswith(b"(request-target): post /\ndigest: SHA256=")
    verify_rsa(key, params.signature, message)


@pytest.mark.parametrize(
    ("path", "edit"),
    [
        ("/smartapp", {}),
        ("/", {"date": "Tue, 24 Mar 2020 13:23:38 UTC"}),
        ("/", {"digest": "SHA256=bLAlinhTVIeMWN5sMCEU2Jn2x27o8bOaKmuCT6YWW+w="}),
        ("/", {"digest": "SHA-256=aLAlinhTVIeMWN5sMCEU2Jn2x27o8bOaKmuCT6YWW+w="}),
    ],
    ids=["path", "date", "digest", "digest_prefix"],
)
def test_padlock_vector_fails_when_anything_changes(padlock, path, edit):
    headers, key = padlock
    headers = {**headers, **edit}
    params = parse_authorization(headers["authorization"])
    message = signing_string(method="POST", public_path=path, headers=headers, signed=params.headers)
    assert reason_of(lambda: verify_rsa(key, params.signature, message)) == "bad_signature"


def test_padlock_vector_through_verifier_stops_at_the_digest(padlock):
    """Without the original body the digest step must refuse, after the date check and before any key."""
    headers, key = padlock
    signed_at = parse_http_date(headers["date"])
    assert signed_at == 1585056217.0  # 2020-03-24T13:23:37Z
    keys = KeyRecorder(key)
    check = verifier(keys, now=signed_at + 10)
    assert reason_of(lambda: check.verify(method="POST", headers=headers, body=b"{}")) == "digest_mismatch"
    late = verifier(keys, now=signed_at + 86400)
    assert reason_of(lambda: late.verify(method="POST", headers=headers, body=b"{}")) == "date_out_of_window"
    assert keys.asked == []


def _legacy(name: str) -> dict[str, str]:
    return lower(json.loads((SIGNED / name).read_text())["headers"])


def test_legacy_vector_verifies_with_configured_key():
    headers = _legacy("legacy_config_init_sig_pass.json")
    key = load_public_key((SIGNED / "legacy_public_key.pem").read_bytes())
    params = parse_authorization(headers["authorization"])
    # The keyId names the pasted key by fingerprint; the resolver must accept it without any network.
    resolved = KeyResolver(key_server="http://127.0.0.1:9", configured_key=key).resolve(params.key_id)
    message = signing_string(method="post", public_path="/", headers=headers, signed=params.headers)
    verify_rsa(resolved, params.signature, message)


def test_legacy_fail_twin_is_rejected():
    headers = _legacy("legacy_config_init_sig_fail.json")
    key = load_public_key((SIGNED / "legacy_public_key.pem").read_bytes())
    params = parse_authorization(headers["authorization"])
    message = signing_string(method="post", public_path="/", headers=headers, signed=params.headers)
    assert reason_of(lambda: verify_rsa(key, params.signature, message)) == "bad_signature"


def test_legacy_vector_through_verifier_stops_at_the_digest():
    """The fixture body was re-serialised, so its Digest cannot match: the verifier must say so."""
    headers = _legacy("legacy_config_init_sig_pass.json")
    raw = json.loads((SIGNED / "legacy_config_init_sig_pass.json").read_text())["body"]
    keys = KeyRecorder(load_public_key((SIGNED / "legacy_public_key.pem").read_bytes()))
    check = verifier(keys, now=parse_http_date(headers["date"]))
    body = json.dumps(raw).encode()
    assert reason_of(lambda: check.verify(method="POST", headers=headers, body=body)) == "digest_mismatch"
    assert keys.asked == []


# --- cost ----------------------------------------------------------------------------------------


def test_checks_before_rsa_are_cheap(signer):
    """Everything up to key resolution runs per request; keep it in the tens of microseconds."""
    headers = signed(signer)

    def refuse(key_id):
        raise SignatureError("unknown_key")

    check = verifier(refuse)
    rounds = 2000
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(rounds):
            try:
                check.verify(method="POST", headers=headers, body=BODY)
            except SignatureError:
                pass
        best = min(best, (time.perf_counter() - start) / rounds)
    assert best < 250e-6, f"{best * 1e6:.1f} µs per request before RSA"
