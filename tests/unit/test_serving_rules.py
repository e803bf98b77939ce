"""What the default worker reads from gunicorn's settings: its limits, whom it trusts, when it steps aside."""

from __future__ import annotations

import pytest
from gunicorn.config import Config

from smartapp.serving.rules import MAX_HEAD_BYTES, ServingRules
from smartapp.serving.worker import llhttp_can_serve


def config(**settings) -> Config:
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return cfg


def test_limits_and_scheme_fields_come_from_gunicorn_s_settings():
    rules = ServingRules.from_config(config(keepalive=7, limit_request_line=100, limit_request_fields=5,
                                            limit_request_field_size=0))
    assert (rules.keepalive, rules.limit_request_line, rules.limit_request_fields) == (7.0, 100, 5)
    assert rules.limit_request_field_size == MAX_HEAD_BYTES  # 0 is gunicorn's "no limit": the head cap holds
    assert rules.secure_scheme == {"HTTP_X_FORWARDED_PROTOCOL": "ssl", "HTTP_X_FORWARDED_PROTO": "https",
                                   "HTTP_X_FORWARDED_SSL": "on"}


@pytest.mark.parametrize("allowed, peer, trusted", [
    ("127.0.0.1", ("127.0.0.1", 5000), True),
    ("127.0.0.1", ("10.0.0.1", 5000), False),
    ("10.0.0.0/8,192.168.1.1", ("10.20.30.40", 1), True),
    ("10.0.0.0/8,192.168.1.1", ("192.168.1.2", 1), False),
    ("::1", ("::1", 1, 0, 0), True),
    ("*", ("203.0.113.9", 1), True),
    ("127.0.0.1", "/run/app.sock", True),  # a unix socket: only a local proxy can connect
])
def test_only_forwarded_allow_ips_may_claim_https(allowed, peer, trusted):
    assert ServingRules.from_config(config(forwarded_allow_ips=allowed)).trusts_proxy(peer) is trusted


def test_settings_it_does_not_implement_leave_connections_to_gunicorn(monkeypatch):
    monkeypatch.delenv("SCRIPT_NAME", raising=False)
    assert llhttp_can_serve(config())
    for settings in ({"accesslog": "-"}, {"proxy_protocol": "v1"}, {"header_map": "refuse"},
                     {"permit_obsolete_folding": True}, {"http2_cleartext": "upgrade"}):
        assert not llhttp_can_serve(config(**settings)), settings
    monkeypatch.setenv("SCRIPT_NAME", "/app")
    assert not llhttp_can_serve(config())
