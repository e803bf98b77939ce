"""gunicorn settings for the SmartApp webhook; every value can be overridden by the environment."""

import importlib.util
import multiprocessing
import os
import sys


def _settings_module():
    """smartapp/settings.py, run without importing the smartapp package.

    This file runs in gunicorn's master, before the fork. The package imports requests, whose urllib3
    keeps its own references to ssl's classes; a gevent worker patches the standard library only after
    the fork, so those references would stay the blocking originals and one HTTPS call would stall every
    request of the worker. The settings module itself needs only the standard library.
    """
    package = importlib.util.find_spec("smartapp")  # locates the package without running it
    spec = importlib.util.spec_from_file_location(
        "_smartapp_settings_in_gunicorn_master", os.path.join(package.submodule_search_locations[0], "settings.py"))
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up there
    spec.loader.exec_module(module)
    return module


# Development: PORT and friends may sit in `.env` like the service's own settings; real variables win.
env = {**_settings_module().read_dotenv(".env"), **os.environ}

bind = f"0.0.0.0:{env.get('PORT') or '8000'}"
# gevent: a worker serves every connection it holds in a greenlet of its own, so a client that sends its
# request slowly ties up a greenlet, not the worker. The service is reachable without a buffering proxy
# (Heroku's router passes request bodies through as they arrive), and with sync workers four connections
# trickling one byte a second stopped it (bench/run.py --slow-clients: the README has the figures).
# gevent patches the standard library when the worker starts, after the fork: see _settings_module above.
# The default is gunicorn's gevent worker with HTTP/1.1 parsed by llhttp (smartapp/serving/worker.py): the same
# connections and limits, and a third less server CPU per signed request than gunicorn's own HTTP handling
# (bench/README.md, "CPU per request"). GUNICORN_WORKER_CLASS=gevent is gunicorn's own. gunicorn imports the
# class in this process; the smartapp package then imports nothing else here.
DEFAULT_WORKER_CLASS = "smartapp.serving.worker.Worker"
worker_class = env.get("GUNICORN_WORKER_CLASS", DEFAULT_WORKER_CLASS)
# gevent: one worker per core, each serving all its connections; a second per core only adds process switches
# and idle wake-ups (bench/run.py: 15% less CPU per signed request with 2 than with 4 on 2 cores). Sync and
# gthread workers wait on Redis and remote calls without serving, so they get two per core.
# Heroku sets WEB_CONCURRENCY from the dyno size.
_one_per_core = worker_class in ("gevent", DEFAULT_WORKER_CLASS)
workers = int(env.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * (1 if _one_per_core else 2))
threads = int(env.get("GUNICORN_THREADS", "1"))
# gevent and gthread: how many connections one worker holds at once. With gthread, keep-alive connections
# stay with the worker that accepted them; a low cap spreads them over the workers, but connections beyond
# workers × cap then wait in the backlog for an idle one to close (bench: p99 454 ms at 64 connections with
# a cap of 8).
worker_connections = int(env.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
# Backstop only: a request's own budget is 8 s (SmartThings gives 10 s); stay below Heroku's 30 s router.
timeout = int(env.get("GUNICORN_TIMEOUT", "20"))
graceful_timeout = 20
# Under the router's idle timeout (Heroku: 90 s), so the router, not gunicorn, closes idle connections last.
# With gevent it also bounds how long a connection may take to send its request headers.
keepalive = 5
# A request body must keep arriving: a connection that sends none of it for this long is answered 400 and
# dropped. SmartThings sends a body at once; a stalled one would otherwise hold its greenlet for ever.
# (This hook is for gunicorn's own workers; the default worker applies the same figure itself.)
BODY_STALL_SECONDS = 5.0


def pre_request(worker, req):
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    if sock is not None:
        sock.settimeout(BODY_STALL_SECONDS)


def post_worker_init(worker):
    """Each response leaves in one write (the headers with the body) and reuses its second's Date text;
    imported here, after gevent's patching."""
    from smartapp import gunicorn_date, one_write_response

    one_write_response.install()
    gunicorn_date.install()


# Each worker opens its own store connections after the fork (SQLite and Redis clients must not be shared).
preload_app = False
# HTTP parsing limits (gunicorn's defaults, stated so a change is deliberate).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# X-Forwarded-Proto/For are trusted only from these addresses. On Heroku every request comes through the
# router and dynos cannot be reached directly, so trusting all ("*") is right there; elsewhere only the
# local proxy unless FORWARDED_ALLOW_IPS says otherwise.
forwarded_allow_ips = env.get("FORWARDED_ALLOW_IPS") or ("*" if env.get("DYNO") else "127.0.0.1")
# The worker heartbeat file: on a container's overlay filesystem it can stall workers, /dev/shm cannot.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn >= 25 opens a control socket under $HOME by default: unused here, shared by every instance of one
# user, and unwritable for a container user without a home. (Older gunicorn ignores this name.)
control_socket_disable = True
# The app logs one line per request itself; set GUNICORN_ACCESS_LOG=- for gunicorn's access log too.
accesslog = env.get("GUNICORN_ACCESS_LOG") or None
# The path without its query (%(U)s, not the request line %(r)s): a target URL like `/hook?code=...` must not
# put its secret into the access log. No referer either.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = env.get("GUNICORN_LOG_LEVEL", "info")
