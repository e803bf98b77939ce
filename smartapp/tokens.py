"""A valid token for installation X: single-flight refresh of the SmartThings and provider token pairs."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from smartapp.deadline import Deadline
from smartapp.errors import (
    ProviderRejected, ReauthRequired, StoreUnavailable, UnknownInstallation, UpstreamUnavailable, VersionConflict,
)
from smartapp.grant import Grant
from smartapp.store import Installation, Store
from smartapp.store.installation import TokenPair

log = logging.getLogger(__name__)

# The lease must outlive one token call plus the write, yet free a dead holder's installation soon.
# A holder SIGSTOPped past it is stopped by the compare-and-set instead (docs/reliability.md#the-lock-lease).
LOCK_TTL_SECONDS = 15.0
CALL_TIMEOUT_SECONDS = 4.0     # one token call, well inside the request's 8 s budget
MAX_LOCK_WAIT_SECONDS = 6.0
EARLY_SECONDS = 60.0           # a token this close to expiry counts as expired
_CAS_ATTEMPTS = 5


@dataclass(frozen=True)
class TokenKind:
    """One kind of token pair: how to read it from a record, and the record fields it is written to."""

    name: str
    pair: Callable[[Installation], TokenPair]
    access: str            # the field names, for writes (the stored layout stays as it is)
    refresh: str
    expires_at: str
    issued_at: str
    default_lifetime: float | None = None   # when a refresh answer carries no expires_in

    @property
    def rejected(self) -> str:
        """The `reauth_required` value after this kind's refresh token proved dead."""
        return f"{self.name}_refresh_rejected"


# SmartThings access tokens last ~24 h; refresh tokens 30 days and are single-use (docs/protocol.md#tokens).
SMARTTHINGS = TokenKind("smartthings", lambda record: record.smartthings_tokens, "auth_token", "refresh_token",
                        "auth_token_expires_at", "refresh_token_issued_at", default_lifetime=24 * 3600 - 300)
PROVIDER = TokenKind("provider", lambda record: record.provider_tokens, "provider_access_token",
                     "provider_refresh_token", "provider_token_expires_at", "provider_refresh_token_issued_at")
KINDS: dict[str, TokenKind] = {kind.name: kind for kind in (SMARTTHINGS, PROVIDER)}

# (the record as read under the lock, timeout in seconds) -> the new grant, or ProviderRejected /
# UpstreamUnavailable. It makes exactly one remote call: refresh tokens are single-use.
Refresher = Callable[[Installation, float], Grant]


@dataclass(frozen=True)
class Refreshed:
    installation: Installation   # as stored after the call
    refreshed: bool              # False: not needed any more (another worker or host did it)


def expires_within(record: Installation, kind: TokenKind, seconds: float, *, now: float) -> bool:
    """True when the access token is missing or expires within `seconds`; no known expiry never expires."""
    pair = kind.pair(record)
    if pair.access_token is None:
        return pair.refresh_token is not None
    return pair.expires_at is not None and pair.expires_at - now < seconds


class TokenKeeper:
    """Hands out access tokens, refreshing each installation's pair at most once at a time, anywhere."""

    def __init__(self, *, store: Store, refreshers: Mapping[str, Refresher], clock: Callable[[], float] = time.time,
                 lock_ttl: float = LOCK_TTL_SECONDS, call_timeout: float = CALL_TIMEOUT_SECONDS,
                 max_wait: float = MAX_LOCK_WAIT_SECONDS) -> None:
        if lock_ttl <= call_timeout + 1.0:
            raise ValueError("the refresh lock must outlive the token call plus the write")
        self.store = store
        self.refreshers = dict(refreshers)
        self.clock = clock
        self.lock_ttl = lock_ttl
        self.call_timeout = call_timeout
        self.max_wait = max_wait

    # --- what callers use -----------------------------------------------------------------------

    def access_token(self, installed_app_id: str, kind: str = "smartthings", *, deadline: Deadline,
                     min_valid_seconds: float = EARLY_SECONDS) -> str:
        """A token valid for at least `min_valid_seconds`, refreshed first if needed (single-flight)."""
        token_kind = KINDS[kind]

        def stale(record: Installation) -> bool:
            return expires_within(record, token_kind, min_valid_seconds, now=self.clock())

        record = self._get(installed_app_id)
        if stale(record):
            record = self.refresh_if(installed_app_id, kind, stale, deadline=deadline).installation
        token = token_kind.pair(record).access_token
        if token is None:
            raise ReauthRequired(detail=f"no {kind} token stored")
        return token

    def refresh_rejected(self, installed_app_id: str, kind: str, rejected_access_token: str, *,
                         deadline: Deadline) -> str:
        """An API answered 401 to this access token: refresh unless someone already replaced it."""
        token_kind = KINDS[kind]
        result = self.refresh_if(installed_app_id, kind,
                                 lambda record: token_kind.pair(record).access_token == rejected_access_token,
                                 deadline=deadline)
        token = token_kind.pair(result.installation).access_token
        if token is None or token == rejected_access_token:
            raise ReauthRequired(detail=f"{kind} token rejected and not replaced")
        return token

    def refresh_if(self, installed_app_id: str, kind: str, needed: Callable[[Installation], bool], *,
                   deadline: Deadline) -> Refreshed:
        """Refresh under the installation's lock if `needed` still holds for the record read after taking it."""
        token_kind = KINDS[kind]
        wait = max(0.0, min(self.max_wait, deadline.remaining() - self.call_timeout - 1.0))
        owner = self.store.acquire(installed_app_id, ttl_seconds=self.lock_ttl, wait_seconds=wait)
        if owner is None:
            # Whoever holds the lock may have finished a moment ago.
            record = self._get(installed_app_id)
            if not needed(record):
                return Refreshed(record, refreshed=False)
            self._log(logging.WARNING, "refresh_lock_timeout", installed_app_id, token_kind)
            raise UpstreamUnavailable("refresh_lock_timeout")
        try:
            # Re-read under the lock: another process or host may have refreshed already.
            record = self._get(installed_app_id)
            if not needed(record):
                return Refreshed(record, refreshed=False)
            return self._refresh(installed_app_id, token_kind, record, deadline)
        finally:
            try:
                self.store.release_lock(installed_app_id, owner)
            except StoreUnavailable:
                pass  # the lease expires on its own

    # --- the refresh itself ---------------------------------------------------------------------

    def _refresh(self, installed_app_id: str, kind: TokenKind, record: Installation, deadline: Deadline) -> Refreshed:
        if record.reauth_required == kind.rejected:
            # A dead refresh token is not sent again; only UPDATE or a new link clears the flag.
            raise ReauthRequired(detail=f"{kind.name} refresh token already rejected")
        used = kind.pair(record).refresh_token
        if used is None:
            raise ReauthRequired(detail=f"no {kind.name} refresh token stored")
        refresher = self.refreshers.get(kind.name)
        if refresher is None:
            raise ReauthRequired(detail=f"no {kind.name} refresh configured")
        started = self.clock()
        timeout = deadline.timeout(cap=self.call_timeout)
        try:
            grant = refresher(record, timeout)
        except ProviderRejected as error:
            if error.error != "invalid_grant":
                self._log(logging.WARNING, "refresh_failed", installed_app_id, kind, detail=f"error={error.error}")
                raise
            newer = self._flag_rejected(installed_app_id, kind, record, used)
            if newer is not None:
                return Refreshed(newer, refreshed=False)
            raise ReauthRequired(detail=f"{kind.name} refresh token rejected") from None
        except UpstreamUnavailable as error:
            # The old pair stays. After a timeout the provider may have rotated anyway; if so the
            # next attempt gets invalid_grant and is flagged: detected, never silent.
            reason = "refresh_outcome_unknown" if error.reason.endswith("timeout") else "refresh_failed"
            self._log(logging.WARNING, reason, installed_app_id, kind, detail=error.reason)
            raise
        stored = self._store_grant(installed_app_id, kind, record, used, grant, started)
        return Refreshed(stored, refreshed=kind.pair(stored).access_token == grant.access_token)

    def _store_grant(self, installed_app_id: str, kind: TokenKind, record: Installation, used: str, grant: Grant,
                     started: float) -> Installation:
        """Compare-and-set: written only over the pair we refreshed; a newer pair (UPDATE, re-link) wins."""
        base = record
        for _ in range(_CAS_ATTEMPTS):
            fields = _grant_fields(kind, base, grant, started)
            try:
                version = self.store.update(installed_app_id, fields, expected_version=base.version)
            except VersionConflict:
                latest = self.store.get(installed_app_id)
                if latest is None or kind.pair(latest).refresh_token != used:
                    self._log(logging.WARNING, "refresh_superseded", installed_app_id, kind)
                    if latest is None:
                        raise ReauthRequired(detail="installation removed during refresh") from None
                    return latest
                base = latest  # an unrelated field changed meanwhile: our pair still belongs on top
                continue
            self._log(logging.INFO, "token_refreshed", installed_app_id, kind,
                      detail="rotated" if grant.refresh_token is not None else "refresh token kept")
            return dataclasses.replace(base, version=version, **fields)
        raise StoreUnavailable(detail="refresh write kept conflicting")

    def _flag_rejected(self, installed_app_id: str, kind: TokenKind, record: Installation,
                       used: str) -> Installation | None:
        """Mark re-authorisation needed, unless a newer pair arrived meanwhile (then return it)."""
        base = record
        for _ in range(_CAS_ATTEMPTS):
            try:
                self.store.update(installed_app_id, {"reauth_required": kind.rejected}, expected_version=base.version)
            except VersionConflict:
                latest = self.store.get(installed_app_id)
                if latest is None or kind.pair(latest).refresh_token != used:
                    return latest
                base = latest
                continue
            break
        self._log(logging.ERROR, "reauth_required", installed_app_id, kind,
                  detail=f"{kind.name} refresh token rejected (invalid_grant): "
                         + ("the user must link the account again" if kind is PROVIDER
                            else "SmartThings must send UPDATE (user re-saves the app)"))
        return None

    # --- plumbing -------------------------------------------------------------------------------

    def _get(self, installed_app_id: str) -> Installation:
        record = self.store.get(installed_app_id)
        if record is None:
            raise UnknownInstallation(detail="no such installation")
        return record

    @staticmethod
    def _log(level: int, reason: str, installed_app_id: str, kind: TokenKind, *, detail: str = "") -> None:
        # Ids and reason codes only: never a token, nor a provider's error description.
        log.log(level, reason, extra={"reason": reason, "installedAppId": installed_app_id,
                                      "tokenKind": kind.name, "detail": detail})


def _grant_fields(kind: TokenKind, base: Installation, grant: Grant, started: float) -> dict:
    lifetime = grant.expires_in if grant.expires_in is not None else kind.default_lifetime
    fields: dict = {kind.access: grant.access_token,
                    kind.expires_at: started + lifetime if lifetime is not None else None}
    if grant.refresh_token is not None:
        fields[kind.refresh] = grant.refresh_token
        fields[kind.issued_at] = started
    # No refresh token in the answer means the old one stays valid; it is kept, never cleared.
    if kind is PROVIDER and grant.scope:
        fields["provider_scope"] = grant.scope
    if base.reauth_required == kind.rejected:
        fields["reauth_required"] = None
    return fields
