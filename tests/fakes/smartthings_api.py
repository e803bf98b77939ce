"""The suite's SmartThings API stand-in: the public fake from smartapp.testing."""

from smartapp.testing import FakeSmartThings as SmartThingsApi

__all__ = ["SmartThingsApi"]
