"""A SmartThings webhook SmartApp framework: write the app with `SmartApp`; `create_app` serves it."""

from smartapp.api import ApiError, SmartThingsApi
from smartapp.app import create_app
from smartapp.application import SmartApp
from smartapp.config_values import ConfigValueError, ConfigValues, DeviceList, DeviceRef
from smartapp.context import Context
from smartapp.errors import ReauthRequired, SmartAppError, StoreUnavailable, UnknownInstallation
from smartapp.linked_account import LinkedAccount
from smartapp.pages import Page, Section
from smartapp.proactive import installation
from smartapp.state import InstallationState

__all__ = [
    "ApiError", "ConfigValueError", "ConfigValues", "Context", "DeviceList", "DeviceRef", "InstallationState",
    "LinkedAccount", "Page", "ReauthRequired", "Section", "SmartApp", "SmartAppError", "SmartThingsApi",
    "StoreUnavailable", "UnknownInstallation", "create_app", "installation",
]
