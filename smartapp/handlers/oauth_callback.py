"""OAUTH_CALLBACK: finish a third-party account link (check the pending link, exchange the code, store, end it)."""

from __future__ import annotations

import hashlib
import logging

from smartapp.errors import (
    MalformedRequest, OAuthLinkError, OAuthNotConfigured, ProviderRejected, StoreUnavailable, UpstreamUnavailable,
)
from smartapp.lifecycle import Lifecycle, require_str
from smartapp.oauth.callback import CallbackParams, parse_url_path
from smartapp.oauth.link import PendingLink, origin
from smartapp.oauth.provider import Provider
from smartapp.services import RequestInfo, Services
from smartapp.tokens import PROVIDER

log = logging.getLogger(__name__)

# The state is the installedAppId, which anyone can guess, so a stranger can send callbacks for a user's
# pending link: a failed exchange must not end it, but a link takes only this many failed codes.
MAX_FAILED_ATTEMPTS = 5


def handle(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    if services.oauth is None:
        raise OAuthNotConfigured(detail="SMARTAPP_OAUTH_PROVIDER is not set")
    installed_app_id = lifecycle.installed_app_id
    if installed_app_id is None:
        raise MalformedRequest("malformed_request", "oauthCallbackData.installedAppId is missing")
    # Failures raise OAuthLinkError (400) or UpstreamUnavailable (503); the request log line carries the
    # reason code and ids. Nothing is written before the exchange succeeded, and only a successful
    # exchange (or its expiry) ends the pending link.
    params = parse_url_path(require_str(lifecycle.data, "urlPath"))
    _check_state(installed_app_id, params)
    if params.error is not None:
        if params.error == "access_denied":
            # Anyone can send this for the installation, so it leaves the pending link for the user.
            log.info("oauth_access_denied", extra={"reason": "oauth_access_denied", "installedAppId": installed_app_id})
            return {}
        raise OAuthLinkError("oauth_authorization_error", f"error={params.error}")
    if params.code is None:
        raise OAuthLinkError("oauth_code_missing")
    pending = _attempt_pending(installed_app_id, params, services)
    _exchange_and_store(installed_app_id, params.code, pending, services.oauth, services, request)
    try:
        services.store.consume(installed_app_id)
    except StoreUnavailable:
        # The tokens are stored; the link expires on its own.
        log.warning("oauth_link_not_ended", extra={"reason": "store_unavailable", "installedAppId": installed_app_id})
    return {}


def _check_state(installed_app_id: str, params: CallbackParams) -> None:
    if params.state is None:
        raise OAuthLinkError("oauth_state_missing")
    if params.state != installed_app_id:
        raise OAuthLinkError("oauth_state_mismatch", "state names another installation")


def _attempt_pending(installed_app_id: str, params: CallbackParams, services: Services) -> PendingLink:
    """The link recorded when the page was served; it says what to expect, not the callback.

    Each code is let through once (a code is single-use, and a second exchange can revoke the grant).
    """
    code_digest = hashlib.sha256(params.code.encode()).hexdigest()
    attempt = services.store.attempt(installed_app_id, code_digest, max_attempts=MAX_FAILED_ATTEMPTS)
    if attempt.refusal is not None:
        raise OAuthLinkError(attempt.refusal, "no pending link (never served, expired, used or given up on)"
                             if attempt.refusal == "oauth_link_not_pending" else "")
    pending = PendingLink.from_record(attempt.link)
    if pending is None:
        raise OAuthLinkError("oauth_link_not_pending", "the pending link is unreadable")
    if pending.expires_at <= services.clock():
        raise OAuthLinkError("oauth_link_expired")
    if pending.provider != services.oauth.config.name:
        raise OAuthLinkError("oauth_provider_changed", f"link made for {pending.provider}")
    if params.iss is not None and not _issuer_matches(params.iss, pending):
        # RFC 9207 / RFC 9700 §4.4 mix-up defence: the response came from another authorization server.
        raise OAuthLinkError("oauth_issuer_mismatch")
    return pending


def _issuer_matches(iss: str, pending: PendingLink) -> bool:
    """The exact issuer when it is known; otherwise it must live on the authorize URL's origin."""
    if pending.issuer:
        return iss == pending.issuer
    try:
        return origin(iss) == pending.authorize_origin
    except ValueError:
        return False


def _exchange_and_store(installed_app_id: str, code: str, pending: PendingLink, provider: Provider,
                        services: Services, request: RequestInfo) -> None:
    started = services.clock()
    # One attempt, bounded by the request's budget: SmartThings waits 10 s and a code cannot be reused.
    timeout = request.deadline.timeout(cap=provider.config.call_timeout)
    try:
        grant = provider.exchange_code(code=code, code_verifier=pending.verifier, redirect_uri=pending.redirect_uri,
                                       region=pending.region, timeout=timeout)
    except ProviderRejected as error:
        reason = "oauth_token_response_invalid" if error.error == "invalid_token_response" else "oauth_exchange_failed"
        raise OAuthLinkError(reason, f"error={error.error}") from None
    except UpstreamUnavailable as error:
        raise UpstreamUnavailable("oauth_provider_unavailable", error.reason) from None
    fields = {
        "provider": pending.provider,
        "provider_access_token": grant.access_token,
        "provider_refresh_token": grant.refresh_token,   # None clears an earlier link's
        "provider_token_expires_at": started + grant.expires_in if grant.expires_in is not None else None,
        "provider_refresh_token_issued_at": started if grant.refresh_token is not None else None,
        "provider_scope": grant.scope,
        "provider_region": pending.region,
        "provider_user_id": grant.user_id,
    }
    current = services.store.get(installed_app_id)
    if current is not None and current.reauth_required == PROVIDER.rejected:
        fields["reauth_required"] = None
    # A field-level merge: the SmartThings pair and config (INSTALL comes later or came before) stay.
    services.store.update(installed_app_id, fields)
    log.info("oauth_linked", extra={"reason": "oauth_linked", "installedAppId": installed_app_id,
                                    "provider": pending.provider, "refreshable": grant.refresh_token is not None})
