"""Encrypts stored tokens with rotatable Fernet keys, each bound to its installation and token kind."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import stat
import tempfile
from typing import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from smartapp.errors import SmartAppError

log = logging.getLogger(__name__)


class CorruptRecord(SmartAppError):
    """A stored secret that fails decryption or names another installation/kind; it is never used."""

    status = 500
    reason = "corrupt_record"


# Plaintext layout: "t1|<owner digest>|<value>"; the version prefix leaves room for another layout.
_PREFIX = "t1|"


def _owner(installed_app_id: str, kind: str) -> str:
    """72 bits of SHA-256 over installation and field: enough to tell any two records apart."""
    digest = hashlib.sha256(f"{installed_app_id}\x00{kind}".encode("utf-8")).digest()[:9]
    return base64.urlsafe_b64encode(digest).decode("ascii")


class TokenCipher:
    """MultiFernet over the configured keys: the first key encrypts, every key decrypts."""

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, (str, bytes)):
            raise ValueError("TokenCipher takes a list of keys; use TokenCipher.from_env_value for a comma list")
        keys = list(keys)
        if not keys:
            raise ValueError("no token key given: SMARTAPP_TOKEN_KEYS needs at least one Fernet key")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip() if isinstance(key, str) else key))
            except (ValueError, TypeError, AttributeError):
                # The message names the position only: a key, even a broken one, never reaches a log.
                raise ValueError(
                    f"token key {position} of {len(keys)} is not a Fernet key "
                    "(url-safe base64 encoding of 32 random bytes)"
                ) from None
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def from_env_value(cls, value: str) -> "TokenCipher":
        """Parses SMARTAPP_TOKEN_KEYS: comma-separated keys, newest first; blanks around commas ignored."""
        return cls([part.strip() for part in (value or "").split(",") if part.strip()])

    def encrypt(self, installed_app_id: str, kind: str, value: str) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{kind} must be a string to be stored")
        # Fernet has no associated data, so the plaintext names its owner: a blob copied to another
        # installation (or into another field) fails the check in decrypt(). A short digest of the
        # owner keeps each token ~60 bytes smaller than spelling the ids out (Redis memory per install).
        plaintext = f"{_PREFIX}{_owner(installed_app_id, kind)}|{value}"
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, installed_app_id: str, kind: str, token: str | bytes) -> str:
        try:
            raw = self._fernet.decrypt(token.encode("ascii") if isinstance(token, str) else token)
        except (InvalidToken, UnicodeEncodeError, TypeError):
            raise CorruptRecord(detail=f"{kind}: not decryptable with the configured keys") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptRecord(detail=f"{kind}: decrypted text is not a token record") from None
        owner, separator, value = text.removeprefix(_PREFIX).partition("|")
        if not text.startswith(_PREFIX) or not separator:
            raise CorruptRecord(detail=f"{kind}: decrypted text is not a token record")
        if not hmac.compare_digest(owner, _owner(installed_app_id, kind)):
            raise CorruptRecord(detail=f"{kind}: record belongs to another installation or field")
        return value

    def rotate(self, token: str | bytes) -> str:
        """Re-encrypts under the first key (keeping the original timestamp) so older keys can be dropped."""
        try:
            rotated = self._fernet.rotate(token.encode("ascii") if isinstance(token, str) else token)
        except (InvalidToken, UnicodeEncodeError, TypeError):
            raise CorruptRecord(detail="not decryptable with the configured keys") from None
        return rotated.decode("ascii")


def load_or_create_key_file(path: str) -> str:
    """Development keys: the file's keys as a comma list, creating the file with one fresh key if missing.

    The file holds one key per line (or a comma list), newest first; `#` lines are comments.
    Creation is atomic and race-safe: the key is written and fsynced to a private temporary file,
    then hard-linked into place, which fails if another process got there first (we then read theirs).
    """
    path = os.path.abspath(path)
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = Fernet.generate_key().decode("ascii")
    # mkstemp creates the file with mode 0600, so the key is never readable by others, even briefly.
    fd, temporary = tempfile.mkstemp(prefix=".smartapp-key-", dir=directory)
    created = False
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write("# SmartApp token encryption keys, newest first; keep this file secret\n")
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process created it first; its key wins so both agree
        except OSError:
            created = _create_exclusive(path, key)  # filesystems without hard links
        else:
            created = True
            _fsync_directory(directory)
    finally:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
    if created:
        log.warning("token_key_created", extra={"path": path})
    return _read_key_file(path)


def _create_exclusive(path: str, key: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_key_file(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        text = handle.read()
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("token_key_file_permissions", extra={"path": path, "mode": oct(mode & 0o777)})
    keys = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keys.extend(part.strip() for part in line.split(",") if part.strip())
    if not keys:
        raise ValueError(f"token key file {path} holds no key")
    value = ",".join(keys)
    try:
        TokenCipher.from_env_value(value)
    except ValueError as error:
        raise ValueError(f"token key file {path}: {error}") from None
    return value
