"""Example SmartApps: each is one module, written only with the public API of `smartapp`."""
