"""What the API client knows about its installation: ids, granted scopes, and its location, fetched once."""

from __future__ import annotations

import logging
from typing import Any, Sequence

from smartapp.api.caller import ApiCaller, segment
from smartapp.api.errors import ApiError

log = logging.getLogger(__name__)


class Installation:
    """One installed app's ids; the location (and its time zone) is asked of SmartThings only when needed."""

    def __init__(self, caller: ApiCaller, *, installed_app_id: str, location_id: str | None,
                 permissions: Sequence[str] = ()) -> None:
        self.caller = caller
        self.installed_app_id = installed_app_id
        self.known_location_id = location_id
        self.permissions = tuple(permissions)
        self._location: dict[str, Any] | None = None
        self._time_zone: str | None = None

    @property
    def path(self) -> str:
        return f"/installedapps/{segment(self.installed_app_id)}"

    def location_id(self) -> str:
        """The installation's location; a client built without it reads it from the installed app once."""
        if self.known_location_id is None:
            location_id = self.caller.call_object("GET", self.path).get("locationId")
            if not isinstance(location_id, str) or not location_id:
                raise ApiError("smartthings_invalid_response", method="GET", path=self.path)
            self.known_location_id = location_id
        return self.known_location_id

    def location(self) -> dict[str, Any]:
        """GET /locations/{locationId}, once per client."""
        if self._location is None:
            self._location = self.caller.call_object("GET", f"/locations/{segment(self.location_id())}")
        return self._location

    def time_zone(self) -> str:
        """The location's timeZoneId; UTC (logged once) for a location without one, as the SmartThings SDKs do."""
        if self._time_zone is None:
            zone = self.location().get("timeZoneId")
            if not isinstance(zone, str) or not zone:
                log.warning("location_time_zone_missing", extra={"reason": "location_time_zone_missing",
                                                                 "installedAppId": self.installed_app_id})
                zone = "UTC"
            self._time_zone = zone
        return self._time_zone
