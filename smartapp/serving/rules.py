"""What the worker enforces on every connection, read once from gunicorn's settings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

# A body must keep arriving: a gap this long fails the read (the webhook answers 400 body_incomplete). The
# config's pre_request hook gives gunicorn's own workers the same figure.
BODY_STALL_SECONDS = 5.0
# A request head (target and fields) larger than this is refused (431) whatever the per-field limits allow.
# While a head is unfinished the connection also counts the bytes it received for it, one receive more at
# most, since the parser holds an unfinished field in memory until its line ends.
MAX_HEAD_BYTES = 128 * 1024


@dataclass(frozen=True)
class ServingRules:
    keepalive: float  # seconds a connection may take to send each request head, idle time included; 0: one request
    limit_request_line: int  # bytes of the request target
    limit_request_fields: int
    limit_request_field_size: int  # bytes of one field, name and value
    secure_scheme: dict[str, str]  # environ key of a proxy's scheme field -> the value that means https
    trust_every_proxy: bool  # forwarded_allow_ips is "*"
    trusted_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    body_stall_seconds: float = BODY_STALL_SECONDS
    max_head_bytes: int = MAX_HEAD_BYTES

    @classmethod
    def from_config(cls, cfg: Any) -> ServingRules:
        return cls(
            keepalive=float(cfg.keepalive),
            limit_request_line=cfg.limit_request_line or MAX_HEAD_BYTES,
            limit_request_fields=cfg.limit_request_fields or MAX_HEAD_BYTES,
            limit_request_field_size=cfg.limit_request_field_size or MAX_HEAD_BYTES,
            secure_scheme={"HTTP_" + name.upper().replace("-", "_"): value.lower()
                           for name, value in cfg.secure_scheme_headers.items()},
            trust_every_proxy="*" in cfg.forwarded_allow_ips,
            # gunicorn has validated every entry; a bare address is a network of one.
            trusted_networks=tuple(ipaddress.ip_network(allowed, strict=False)
                                   for allowed in cfg.forwarded_allow_ips if allowed != "*"),
        )

    def trusts_proxy(self, peer: Any) -> bool:
        """Whether this peer may say, in its scheme fields, that the client's connection was HTTPS."""
        if not isinstance(peer, tuple):
            return True  # a unix socket: only a local proxy can connect
        if self.trust_every_proxy:
            return True
        try:
            address = ipaddress.ip_address(peer[0])
        except ValueError:
            return False
        return any(address in network for network in self.trusted_networks)
