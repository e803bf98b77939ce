# The SmartApp webhook service: gunicorn with config/gunicorn.conf.py, as the Procfile runs it.
# Build: docker build -t smartapp .
# Run:   docker run -p 8000:8000 -v smartapp-data:/data --env-file .env smartapp
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml setup.cfg README.md ./
COPY smartapp ./smartapp
COPY config ./config
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin smartapp \
    && mkdir -p /data \
    && chown smartapp:smartapp /data \
    && chmod 700 /data

# The embedded SQLite store (used when REDIS_URL is unset) and its generated keys live on a volume:
# the container's own filesystem is deleted with the container, and the startup banner warns if it is used.
ENV SMARTAPP_DB_PATH=/data/smartapp.db \
    PORT=8000
VOLUME ["/data"]

USER smartapp
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
# gunicorn binds 0.0.0.0:$PORT (config/gunicorn.conf.py); WEB_CONCURRENCY sets the workers. Its gevent
# workers serve slow clients without a buffering proxy in front (README, "Deploying").
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "smartapp:create_app()"]
