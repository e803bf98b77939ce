"""Signature keys: PEM parsing, the bounded fetch, the deployment's fetch budget and the resolver's caches."""

from smartapp.keys.pem import load_public_key, openssh_md5_fingerprint
from smartapp.keys.resolver import LEGACY_PREFIX, KeyResolver

__all__ = ["LEGACY_PREFIX", "KeyResolver", "load_public_key", "openssh_md5_fingerprint"]
