"""TokenCipher: owner-bound encryption, key rotation, loud failures, and the development key file."""

from __future__ import annotations

import os
import stat
import threading

import pytest
from cryptography.fernet import Fernet

from smartapp.errors import SmartAppError
from smartapp.store.cipher import CorruptRecord, TokenCipher, load_or_create_key_file

IAID = "5f0a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
OTHER = "0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e"


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_round_trip_hides_the_plaintext():
    cipher = TokenCipher([new_key()])
    token = cipher.encrypt(IAID, "refresh_token", "canary-refresh-0001")
    assert token.startswith("gAAAAA")
    assert "canary" not in token
    assert cipher.decrypt(IAID, "refresh_token", token) == "canary-refresh-0001"
    assert cipher.decrypt(IAID, "refresh_token", token.encode()) == "canary-refresh-0001"


@pytest.mark.parametrize("owner, kind", [(OTHER, "refresh_token"), (IAID, "auth_token"), ("", "refresh_token")])
def test_blob_bound_to_installation_and_kind(owner, kind):
    cipher = TokenCipher([new_key()])
    token = cipher.encrypt(IAID, "refresh_token", "canary")
    with pytest.raises(CorruptRecord):
        cipher.decrypt(owner, kind, token)


def test_tampered_and_garbage_tokens_are_corrupt():
    cipher = TokenCipher([new_key()])
    token = cipher.encrypt(IAID, "auth_token", "canary")
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    for bad in (flipped, token[:-4], "", "not a token", "gAAAAA", "é"):
        with pytest.raises(CorruptRecord):
            cipher.decrypt(IAID, "auth_token", bad)


def test_wrong_key_fails_loudly():
    token = TokenCipher([new_key()]).encrypt(IAID, "auth_token", "canary")
    with pytest.raises(CorruptRecord) as caught:
        TokenCipher([new_key()]).decrypt(IAID, "auth_token", token)
    assert caught.value.reason == "corrupt_record"
    assert "canary" not in str(caught.value) + caught.value.detail
    assert isinstance(caught.value, SmartAppError) and caught.value.status == 500


def test_rotation_reads_old_and_rewrites_under_first_key():
    old, new = new_key(), new_key()
    token = TokenCipher([old]).encrypt(IAID, "refresh_token", "canary")
    both = TokenCipher([new, old])
    assert both.decrypt(IAID, "refresh_token", token) == "canary"
    rotated = both.rotate(token)
    assert TokenCipher([new]).decrypt(IAID, "refresh_token", rotated) == "canary"
    with pytest.raises(CorruptRecord):
        TokenCipher([old]).decrypt(IAID, "refresh_token", rotated)
    with pytest.raises(CorruptRecord):
        TokenCipher([new_key()]).rotate(token)


def test_new_tokens_use_the_first_key():
    first, second = new_key(), new_key()
    token = TokenCipher([first, second]).encrypt(IAID, "auth_token", "canary")
    assert TokenCipher([first]).decrypt(IAID, "auth_token", token) == "canary"
    with pytest.raises(CorruptRecord):
        TokenCipher([second]).decrypt(IAID, "auth_token", token)


@pytest.mark.parametrize("keys", [[], [""], ["short-secret-key"], ["x" * 44], [new_key(), "bad-key-material"]])
def test_invalid_keys_rejected_without_echo(keys):
    with pytest.raises(ValueError) as caught:
        TokenCipher(keys)
    for key in keys:
        if key:
            assert key not in str(caught.value)


def test_from_env_value_splits_commas():
    first, second = new_key(), new_key()
    cipher = TokenCipher.from_env_value(f" {first} , {second},")
    assert cipher.key_count == 2
    with pytest.raises(ValueError):
        TokenCipher.from_env_value("")
    with pytest.raises(ValueError):
        TokenCipher.from_env_value(" , ")


def test_key_file_created_private_and_stable(tmp_path):
    path = tmp_path / "new-dir" / "smartapp.keys"
    value = load_or_create_key_file(str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert TokenCipher.from_env_value(value).key_count == 1
    assert load_or_create_key_file(str(path)) == value
    assert [name for name in os.listdir(path.parent)] == ["smartapp.keys"]  # no temporary left behind


def test_key_file_race_yields_one_key(tmp_path):
    path = str(tmp_path / "race.keys")
    results: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        results.append(load_or_create_key_file(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    assert os.listdir(tmp_path) == ["race.keys"]


def test_key_file_with_several_keys_and_comments(tmp_path):
    first, second = new_key(), new_key()
    path = tmp_path / "multi.keys"
    path.write_text(f"# newest first\n{first}\n\n{second}\n")
    path.chmod(0o600)
    assert load_or_create_key_file(str(path)) == f"{first},{second}"


@pytest.mark.parametrize("content", ["", "# only a comment\n", "secret-but-not-a-fernet-key\n"])
def test_bad_key_file_is_refused_without_echo(tmp_path, content):
    path = tmp_path / "bad.keys"
    path.write_text(content)
    with pytest.raises(ValueError) as caught:
        load_or_create_key_file(str(path))
    assert "secret-but-not" not in str(caught.value)
    assert path.read_text() == content  # never overwritten
