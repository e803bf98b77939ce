"""The default gunicorn worker: gevent's, with HTTP/1.1 parsed by llhttp instead of gunicorn's Python parser."""

from __future__ import annotations

import os
from typing import Any

from gunicorn.http.wsgi import base_environ
from gunicorn.workers.ggevent import GeventWorker

from smartapp.serving.connection import Connection
from smartapp.serving.environ import connection_environ
from smartapp.serving.rules import ServingRules


class Worker(GeventWorker):
    """gunicorn's gevent worker (process management, signals, graceful stop, max_requests, the pool of connections)
    whose connections are read by llhttp, the parser Node.js uses, and answered in one send each.

    gunicorn's own HTTP handling costs about 250 µs of a worker's CPU per request, more than the webhook's
    signature check and replay claim together. Settings this path does not implement (TLS, the PROXY protocol,
    HTTP/2, an access log, SCRIPT_NAME, header maps other than "drop", the lenient-parsing flags, unix sockets)
    leave a connection to gunicorn's handling, unchanged. gunicorn's pre_request and post_request hooks are
    not called here.
    """

    def init_process(self) -> None:
        self.serving_rules = ServingRules.from_config(self.cfg)
        self.served_by_llhttp = llhttp_can_serve(self.cfg)
        self.shared_environ = base_environ(self.cfg)
        super().init_process()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        server = listener.getsockname()
        if not self.served_by_llhttp or not isinstance(server, tuple):
            super().handle(listener, client, addr)
            return
        try:
            Connection(client, addr, self.wsgi, self.serving_rules,
                       connection_environ(self.shared_environ, addr, server), self).serve()
        except Exception:
            self.log.exception("Error serving a connection")
        finally:
            client.close()

    def count_request(self) -> bool:
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        return self.alive


def llhttp_can_serve(cfg: Any) -> bool:
    """Whether every setting that shapes a request is one this worker implements."""
    return not (
        cfg.is_ssl
        or cfg.proxy_protocol not in ("off", False, None)
        or getattr(cfg, "http2_cleartext", "off") != "off"
        or cfg.accesslog
        or os.environ.get("SCRIPT_NAME")
        or getattr(cfg, "header_map", "drop") != "drop"
        or any(getattr(cfg, flag, False) for flag in (
            "permit_obsolete_folding", "strip_header_spaces", "permit_unconventional_http_method",
            "permit_unconventional_http_version"))
    )
