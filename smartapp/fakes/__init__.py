"""Loopback stand-ins for the clouds the service talks to (the SmartThings API); `smartapp.testing` is the public face."""
