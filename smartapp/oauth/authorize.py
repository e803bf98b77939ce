"""The authorize URL the OAUTH setting opens: the provider's page with client, scope, state and PKCE."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from smartapp.oauth.pkce import s256_challenge
from smartapp.oauth.provider import ProviderConfig

# SmartThings keeps an OAUTH setting's urlTemplate to 2048 characters.
MAX_URL_TEMPLATE = 2048


def authorize_url(config: ProviderConfig, *, state: str, code_verifier: str | None) -> str:
    """Our parameters appended to any the configured URL carries (e.g. `prompt=consent`); ours win."""
    parts = urlsplit(config.authorize_url)
    ours: list[tuple[str, str]] = [
        ("client_id", config.client_id),
        ("response_type", "code"),
        ("redirect_uri", config.redirect_uri),
        ("state", state),
    ]
    if config.scope:
        ours.append(("scope", config.scope))
    if code_verifier is not None:
        ours += [("code_challenge", s256_challenge(code_verifier)), ("code_challenge_method", "S256")]
    names = {name for name, _ in ours}
    kept = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name not in names]
    # quote (not quote_plus) with nothing safe: the redirect URI arrives fully encoded, spaces as %20.
    query = urlencode(kept + ours, quote_via=quote, safe="")
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    if len(url) > MAX_URL_TEMPLATE:
        raise ValueError(f"the authorize URL is {len(url)} characters; SmartThings accepts {MAX_URL_TEMPLATE}")
    return url
