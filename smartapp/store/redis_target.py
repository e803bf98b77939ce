"""What REDIS_URL and the SMARTAPP_REDIS_* settings ask for: parsed and checked before any connection is made."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

SINGLE_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
TLS_VERIFY_MODES = ("full", "ca", "none")
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _whole(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _seconds(value: str) -> float:
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return number


def _cert_reqs(value: str) -> str:
    if value not in ("none", "optional", "required"):
        raise ValueError("must be none, optional or required")
    return value


def _existing_path(value: str) -> str:
    if not os.path.exists(value):
        raise ValueError(f"{value} does not exist")
    return value


# The query options REDIS_URL may carry (redis-py's names), each with the parser its value must pass.
# Anything else is refused: redis-py hands unknown options to the connection class, which raises
# TypeError in every worker at its first connection.
QUERY_OPTIONS = {
    "db": _whole,
    "socket_timeout": _seconds,
    "socket_connect_timeout": _seconds,
    "socket_keepalive": _boolean,
    "health_check_interval": _whole,
    "max_connections": _whole,
    "client_name": str,
    "ssl_cert_reqs": _cert_reqs,
    "ssl_check_hostname": _boolean,
    "ssl_ca_certs": _existing_path,
    "ssl_ca_path": _existing_path,
    "ssl_certfile": _existing_path,
    "ssl_keyfile": _existing_path,
    "ssl_ciphers": str,
}
SENTINEL_QUERY_OPTIONS = {"sentinel_username": str, "sentinel_password": str}
_SECRET_OPTIONS = {"sentinel_password"}


class RedisUrlError(ValueError):
    """REDIS_URL cannot be used; the message says what is wrong and how to write it instead."""


@dataclass(frozen=True)
class RedisTarget:
    """One parsed REDIS_URL: a single server (or any cluster node), a unix socket, or a Sentinel service."""

    scheme: str
    hosts: tuple[tuple[str, int], ...] = ()   # the server, or every sentinel
    path: str | None = None                   # unix socket
    service: str | None = None                # Sentinel service (master) name
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def tls(self) -> bool:
        return self.scheme in ("rediss", "rediss+sentinel")

    @property
    def sentinel(self) -> bool:
        return self.scheme in SENTINEL_SCHEMES

    def where(self) -> str:
        """The address part without credentials, for logs and the banner."""
        if self.path is not None:
            return f"unix://{self.path}"
        hosts = ",".join(f"{host}:{port}" for host, port in self.hosts)
        if self.sentinel:
            return f"{self.scheme}://{hosts}/{self.service}" + (f"/{self.db}" if self.db else "")
        return f"{self.scheme}://{hosts}/{self.db}"


@dataclass(frozen=True)
class RedisOptions:
    """The SMARTAPP_REDIS_* settings that shape every connection."""

    ca_cert: str | None = None       # PEM text or @path
    tls_verify: str | None = None    # full, ca or none; None: the URL's own options, else full
    wait_replicas: int = 0


def parse_redis_url(url: str) -> RedisTarget:
    """RedisTarget, or RedisUrlError naming the mistake and the form that works."""
    url = url.strip()
    scheme, separator, _ = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in SINGLE_SCHEMES + SENTINEL_SCHEMES:
        raise RedisUrlError("REDIS_URL must start with redis://, rediss://, unix://, redis+sentinel:// or "
                            "rediss+sentinel://")
    if scheme in SENTINEL_SCHEMES:
        return _parse_sentinel(url, scheme)
    return _parse_single(url, scheme)


def _parse_single(url: str, scheme: str) -> RedisTarget:
    parts = urlsplit(url)
    options = _parse_query(parts.query, scheme, QUERY_OPTIONS)
    username, password = _credentials(parts.netloc.rpartition("@")[0] if "@" in parts.netloc else "")
    if scheme == "unix":
        if not parts.path:
            raise RedisUrlError("REDIS_URL unix:// needs the socket's path, e.g. unix:///run/redis/redis.sock?db=0")
        return RedisTarget(scheme, path=unquote(parts.path), db=options.pop("db", 0), username=username,
                           password=password, options=options)
    host_list = parts.netloc.rpartition("@")[2]
    if "," in host_list:
        raise RedisUrlError("REDIS_URL names several hosts: give one node of a Redis Cluster (the others are found "
                            "from it), or use redis+sentinel://host:port,host:port/service_name for Sentinel")
    host, port = _host_port(host_list, DEFAULT_PORT)
    db = options.pop("db", None)
    path = parts.path.strip("/")
    if path:
        if not path.isdigit():
            raise RedisUrlError(f"REDIS_URL path {parts.path!r} must be a database number such as /0 (for Sentinel "
                                "write redis+sentinel://host:port/service_name)")
        if db is not None and db != int(path):
            raise RedisUrlError("REDIS_URL gives the database twice (in the path and as ?db=): keep one")
        db = int(path)
    return RedisTarget(scheme, hosts=((host, port),), db=db or 0, username=username, password=password,
                       options=options)


def _parse_sentinel(url: str, scheme: str) -> RedisTarget:
    rest = url.split("://", 1)[1]
    rest, _, query = rest.partition("?")
    rest, _, _fragment = rest.partition("#")
    netloc, slash, path = rest.partition("/")
    options = _parse_query(query, scheme, {**QUERY_OPTIONS, **SENTINEL_QUERY_OPTIONS})
    userinfo, _, host_list = netloc.rpartition("@")
    username, password = _credentials(userinfo)
    if not host_list:
        raise RedisUrlError(f"REDIS_URL {scheme}:// needs at least one sentinel: "
                            f"{scheme}://host:26379,host:26379/service_name")
    hosts = tuple(_host_port(item, DEFAULT_SENTINEL_PORT) for item in host_list.split(","))
    segments = [segment for segment in path.split("/") if segment] if slash else []
    if not segments or len(segments) > 2:
        raise RedisUrlError(f"REDIS_URL {scheme}:// must end in the Sentinel service (master) name, optionally "
                            f"followed by a database number: {scheme}://host:26379/mymaster or .../mymaster/0")
    service = unquote(segments[0])
    db = options.pop("db", None)
    if len(segments) == 2:
        if not segments[1].isdigit():
            raise RedisUrlError(f"REDIS_URL database {segments[1]!r} after the service name must be a number")
        if db is not None and db != int(segments[1]):
            raise RedisUrlError("REDIS_URL gives the database twice (in the path and as ?db=): keep one")
        db = int(segments[1])
    return RedisTarget(scheme, hosts=hosts, service=service, db=db or 0, username=username, password=password,
                       options=options)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon and password else None)


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, _, port_text = text[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise RedisUrlError(f"REDIS_URL host {text!r} has no host name")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise RedisUrlError(f"REDIS_URL port in {text!r} must be a number from 1 to 65535")
        return host, int(port_text)
    return host, default_port


def _parse_query(query: str, scheme: str, known: dict) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        parser = known.get(name)
        if parser is None:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise RedisUrlError(f"REDIS_URL has an unknown query option {name!r}{hint}; known options: "
                                + ", ".join(sorted(known)))
        if name.startswith("ssl_") and scheme not in ("rediss", "rediss+sentinel"):
            raise RedisUrlError(f"REDIS_URL option {name} only applies to TLS: use rediss:// (or rediss+sentinel://)")
        try:
            options[name] = parser(value)
        except ValueError as error:
            shown = "" if name in _SECRET_OPTIONS else f"={value!r}"
            raise RedisUrlError(f"REDIS_URL option {name}{shown}: {error}") from None
    return options


def target_problems(url: str, options: RedisOptions) -> list[str]:
    """Everything wrong with REDIS_URL and the SMARTAPP_REDIS_* settings together, each with its fix."""
    try:
        target = parse_redis_url(url)
    except RedisUrlError as error:
        return [str(error)]
    found = []
    if options.tls_verify is not None and options.tls_verify not in TLS_VERIFY_MODES:
        found.append("SMARTAPP_REDIS_TLS_VERIFY must be full (chain and host name), ca (chain only) or none")
    if options.wait_replicas < 0:
        found.append("SMARTAPP_REDIS_WAIT_REPLICAS must be 0 or more")
    if not target.tls:
        for name, value in (("SMARTAPP_REDIS_CA_CERT", options.ca_cert), ("SMARTAPP_REDIS_TLS_VERIFY",
                                                                         options.tls_verify)):
            if value is not None:
                found.append(f"{name} is set but REDIS_URL does not use TLS: write rediss:// (or rediss+sentinel://), "
                             f"or unset {name}")
        return found
    if options.tls_verify is not None and {"ssl_cert_reqs", "ssl_check_hostname"} & set(target.options):
        found.append("REDIS_URL's ssl_cert_reqs/ssl_check_hostname and SMARTAPP_REDIS_TLS_VERIFY both set the "
                     "verification: keep SMARTAPP_REDIS_TLS_VERIFY and drop the query options")
    if options.ca_cert is not None:
        if {"ssl_ca_certs", "ssl_ca_path"} & set(target.options):
            found.append("REDIS_URL's ssl_ca_certs/ssl_ca_path and SMARTAPP_REDIS_CA_CERT both name the CA: keep "
                         "SMARTAPP_REDIS_CA_CERT and drop the query options")
        try:
            ca_certificates(options.ca_cert)
        except ValueError as error:
            found.append(f"SMARTAPP_REDIS_CA_CERT cannot be used: {error}")
    return found


def ca_certificates(value: str) -> str:
    """The PEM text of SMARTAPP_REDIS_CA_CERT (given inline or as @path), checked to hold certificates."""
    from cryptography import x509

    if value.startswith("@"):
        try:
            with open(value[1:], encoding="ascii") as file:
                value = file.read()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"cannot read {value[1:]} ({type(error).__name__})") from None
    try:
        x509.load_pem_x509_certificates(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError("not PEM certificates (-----BEGIN CERTIFICATE----- ...)") from None
    return value


def verify_mode(target: RedisTarget, options: RedisOptions) -> str | None:
    """The TLS verification in effect: full, ca or none (None without TLS)."""
    if not target.tls:
        return None
    if options.tls_verify is not None:
        return options.tls_verify
    if target.options.get("ssl_cert_reqs") == "none":
        return "none"
    if target.options.get("ssl_check_hostname") is False:
        return "ca"
    return "full"


def tls_arguments(target: RedisTarget, options: RedisOptions) -> dict[str, Any]:
    """redis-py connection keywords for the TLS settings (the URL's own ssl_* options apply on top)."""
    if not target.tls:
        return {}
    arguments: dict[str, Any] = {}
    if options.tls_verify is not None:
        arguments["ssl_cert_reqs"] = "none" if options.tls_verify == "none" else "required"
        arguments["ssl_check_hostname"] = options.tls_verify == "full"
    if options.ca_cert is not None:
        arguments["ssl_ca_data"] = ca_certificates(options.ca_cert)
    return arguments
