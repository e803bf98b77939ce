"""Serving HTTP/1.1 inside gunicorn: the worker class config/gunicorn.conf.py names by default."""
