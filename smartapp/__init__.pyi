"""The public API, for type checkers: smartapp/__init__.py imports each name on first use."""

from smartapp.api import ApiError as ApiError, SmartThingsApi as SmartThingsApi
from smartapp.app import create_app as create_app
from smartapp.application import SmartApp as SmartApp
from smartapp.config_values import ConfigValueError as ConfigValueError, ConfigValues as ConfigValues, DeviceList as DeviceList, DeviceRef as DeviceRef
from smartapp.context import Context as Context
from smartapp.errors import ReauthRequired as ReauthRequired, SmartAppError as SmartAppError, StoreUnavailable as StoreUnavailable, UnknownInstallation as UnknownInstallation
from smartapp.linked_account import LinkedAccount as LinkedAccount
from smartapp.pages import Page as Page, Section as Section
from smartapp.proactive import installation as installation
from smartapp.state import InstallationState as InstallationState

__all__: list[str]
