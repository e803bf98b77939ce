"""A SmartThings webhook SmartApp service; `create_app` builds the Flask application."""

from smartapp.app import create_app

__all__ = ["create_app"]
