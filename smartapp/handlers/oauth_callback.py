"""OAUTH_CALLBACK: finish a third-party account link (consume the pending link, exchange the code, store)."""

from __future__ import annotations

import logging

from smartapp.errors import MalformedRequest, OAuthLinkError, OAuthNotConfigured, ProviderRejected, UpstreamUnavailable
from smartapp.lifecycle import Lifecycle, require_str
from smartapp.oauth.callback import CallbackParams, parse_url_path
from smartapp.oauth.link import PendingLink, origin
from smartapp.oauth.provider import Provider
from smartapp.services import RequestInfo, Services
from smartapp.tokens import PROVIDER

log = logging.getLogger(__name__)


def handle(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    if services.oauth is None:
        raise OAuthNotConfigured(detail="SMARTAPP_OAUTH_PROVIDER is not set")
    installed_app_id = lifecycle.installed_app_id
    if installed_app_id is None:
        raise MalformedRequest("malformed_request", "oauthCallbackData.installedAppId is missing")
    # Failures raise OAuthLinkError (400) or UpstreamUnavailable (503); the request log line carries the
    # reason code and ids. Nothing is written before the exchange succeeded.
    params = parse_url_path(require_str(lifecycle.data, "urlPath"))
    pending = _consume_pending(installed_app_id, params, services)
    if params.error is not None:
        if params.error == "access_denied":
            log.info("oauth_access_denied", extra={"reason": "oauth_access_denied", "installedAppId": installed_app_id,
                                                   "provider": pending.provider})
            return {}
        raise OAuthLinkError("oauth_authorization_error", f"error={params.error}")
    if params.code is None:
        raise OAuthLinkError("oauth_code_missing")
    _exchange_and_store(installed_app_id, params.code, pending, services.oauth, services, request)
    return {}


def _consume_pending(installed_app_id: str, params: CallbackParams, services: Services) -> PendingLink:
    """The link recorded when the page was served, used exactly once; it says what to expect, not the callback."""
    if params.state is None:
        raise OAuthLinkError("oauth_state_missing")
    if params.state != installed_app_id:
        raise OAuthLinkError("oauth_state_mismatch", "state names another installation")
    pending = PendingLink.from_record(services.store.consume(installed_app_id))
    if pending is None:
        raise OAuthLinkError("oauth_link_not_pending", "no pending link (never served, expired or used)")
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
