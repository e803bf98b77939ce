"""`api.locations`, `api.modes`, `api.scenes` and `api.installed_app`: the installation's surroundings."""

from __future__ import annotations

from typing import Any

from smartapp.api.caller import ApiCaller, segment
from smartapp.api.devices import JsonObjects
from smartapp.api.installation import Installation


class Locations:
    def __init__(self, caller: ApiCaller, installation: Installation) -> None:
        self._caller = caller
        self._installation = installation

    def get(self, location_id: str | None = None) -> dict[str, Any]:
        """A location (the installation's by default; that one is fetched once per client)."""
        if location_id is None or location_id == self._installation.known_location_id:
            return self._installation.location()
        return self._caller.call_object("GET", f"/locations/{segment(location_id)}")

    def list(self) -> JsonObjects:
        return self._caller.items("/locations")


class Modes:
    """The modes of the installation's location (Home, Away, Night…)."""

    def __init__(self, caller: ApiCaller, installation: Installation) -> None:
        self._caller = caller
        self._installation = installation

    def list(self) -> JsonObjects:
        return self._caller.items(self._path)

    def get_current(self) -> dict[str, Any]:
        return self._caller.call_object("GET", self._path + "/current")

    def set_current(self, mode_id: str) -> dict[str, Any]:
        segment(mode_id)
        return self._caller.call_object("PUT", self._path + "/current", json={"modeId": mode_id})

    @property
    def _path(self) -> str:
        return f"/locations/{segment(self._installation.location_id())}/modes"


class Scenes:
    """The scenes of the installation's location."""

    def __init__(self, caller: ApiCaller, installation: Installation) -> None:
        self._caller = caller
        self._installation = installation

    def list(self) -> JsonObjects:
        return self._caller.items("/scenes", {"locationId": self._installation.location_id()})

    def execute(self, scene_id: str) -> dict[str, Any]:
        return self._caller.call_object("POST", f"/scenes/{segment(scene_id)}/execute")


class InstalledApp:
    def __init__(self, caller: ApiCaller, installation: Installation) -> None:
        self._caller = caller
        self._installation = installation

    def get(self) -> dict[str, Any]:
        """This installation as SmartThings describes it (installedAppId, locationId, status…)."""
        return self._caller.call_object("GET", self._installation.path)
