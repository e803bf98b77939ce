"""Every failure the service can signal, each with an HTTP status and a stable reason code."""

from __future__ import annotations


class SmartAppError(Exception):
    """Base class: `status` is the HTTP answer, `reason` the code that goes in the log."""

    status = 500
    reason = "internal_error"

    def __init__(self, reason: str | None = None, detail: str = "") -> None:
        if reason is not None:
            self.reason = reason
        # `detail` is for the log only and must never carry a secret or request text.
        self.detail = detail
        super().__init__(self.reason)


class SignatureError(SmartAppError):
    """The request is not provably from SmartThings; every reason answers the same 401."""

    status = 401
    reason = "invalid_signature"


class KeyUnavailable(SmartAppError):
    """The key server could not be asked (down, slow, throttled) for a key we do not have."""

    status = 503
    reason = "key_server_unavailable"


class MalformedRequest(SmartAppError):
    """The body is not acceptable JSON or a lifecycle misses a field it must have."""

    status = 400
    reason = "malformed_request"


class UnsupportedLifecycle(MalformedRequest):
    reason = "unsupported_lifecycle"


class PayloadTooLarge(SmartAppError):
    status = 413
    reason = "payload_too_large"


class UnsupportedMediaType(SmartAppError):
    status = 415
    reason = "unsupported_media_type"


class StoreUnavailable(SmartAppError):
    """The token store did not answer in time; the caller should retry later."""

    status = 503
    reason = "store_unavailable"


class RequestInProgress(SmartAppError):
    """An identical signed request is being processed right now; its answer decides, so retry later."""

    status = 503
    reason = "request_in_progress"


class UpstreamUnavailable(SmartAppError):
    """A remote cloud (SmartThings API, OAuth provider) failed or timed out."""

    status = 503
    reason = "upstream_unavailable"


class OAuthNotConfigured(SmartAppError):
    """OAUTH_CALLBACK arrived but this deployment links no third-party account."""

    status = 400
    reason = "oauth_not_configured"


class VersionConflict(SmartAppError):
    """A compare-and-set write lost to a newer write."""

    status = 409
    reason = "version_conflict"


class OAuthLinkError(SmartAppError):
    """An account-link callback that cannot complete: no pending link, a bad callback, a refused code."""

    status = 400
    reason = "oauth_link_failed"


class ProviderRejected(SmartAppError):
    """A token endpoint answered with an OAuth error; `error` is its RFC 6749 code (e.g. invalid_grant)."""

    status = 400
    reason = "oauth_provider_rejected"

    def __init__(self, error: str, detail: str = "") -> None:
        self.error = error
        super().__init__(detail=detail or f"error={error}")


class ReauthRequired(SmartAppError):
    """A refresh token proved dead: the user must link again (provider) or SmartThings must send UPDATE."""

    status = 400
    reason = "reauth_required"


class UnknownInstallation(SmartAppError):
    """A token was asked for an installation this service does not know."""

    status = 400
    reason = "unknown_installation"
