"""Tests that start the service under gunicorn, the `smartapp` command or another service as a process."""
