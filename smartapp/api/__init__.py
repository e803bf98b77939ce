"""The SmartThings API client a SmartApp's handlers use (`ctx.api`), and its errors."""

from smartapp.api.caller import TokenSource
from smartapp.api.client import SmartThingsApi
from smartapp.api.errors import ApiError

__all__ = ["ApiError", "SmartThingsApi", "TokenSource"]
