"""Development mode without a service: its signer signs like SmartThings, its key file is private and shared by
racing workers, and simulate's verdict on each answer."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import serialization

from smartapp.devkey import dev_key_path, load_or_create_dev_key
from smartapp.signer import signed_headers
from testbed.signing import Signer
from tests.conftest import load_fixture


def test_the_production_signer_signs_exactly_like_the_test_signer(test_key):
    raw = json.dumps(load_fixture("install.json")).encode()
    now = 1_700_000_000.0
    ours = signed_headers(body=raw, private_key=test_key.private_key, key_id=test_key.key_id, path="/hook", now=now)
    theirs = Signer(test_key).headers(raw, path="/hook", now=now)
    assert {k: ours[k] for k in ("Authorization", "Digest", "Date")} == \
           {k: theirs[k] for k in ("Authorization", "Digest", "Date")}


@pytest.mark.slow
def test_the_development_key_file_is_private_and_shared_by_racing_workers(tmp_path):
    path = dev_key_path(str(tmp_path / "data" / "smartapp.db"))
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: load_or_create_dev_key(path), range(8)))
    numbers = {key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo) for key in keys}
    assert len(numbers) == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.name == "smartapp-dev-signing.keys"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


@pytest.mark.parametrize("step,status,answer,label", [
    ("INSTALL", 200, {"installData": {}}, "ok"),
    ("INSTALL", 200, {"updateData": {}}, "FAIL"),
    ("OAUTH_CALLBACK", 400, {"error": "oauth_not_configured"}, "skip"),
    ("OAUTH_CALLBACK", 400, {"error": "oauth_exchange_failed"}, "skip"),
    ("OAUTH_CALLBACK", 400, {"error": "oauth_link_not_pending"}, "FAIL"),
    ("UPDATE", 503, {"error": "store_unavailable"}, "FAIL"),
    ("EVENT", 401, {"error": "unauthorized"}, "FAIL"),
    ("PING", 500, None, "FAIL"),
])
def test_simulate_counts_only_real_failures(tmp_path, step, status, answer, label):
    from smartapp.commands.simulate import judge

    assert judge(step, status, answer, key_path=tmp_path / "k").label == label
