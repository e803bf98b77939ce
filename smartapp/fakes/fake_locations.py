"""The fake SmartThings API's locations: their time zone, modes (and the current one) and scenes."""

from __future__ import annotations

import re
import threading
from typing import Any, Callable, Iterable

from smartapp.fakes.loopback import Call, LoopbackServer, Reply
from smartapp.fakes.replies import FakePart, error_reply, segments


class FakeLocations(FakePart):
    """Locations made known by `add`, each with modes (the first is current) and scenes; records what ran."""

    def __init__(self, server: LoopbackServer, lock: threading.Lock, *, page_size: Callable[[], int]) -> None:
        super().__init__(server, lock, page_size=page_size)
        self.locations: dict[str, dict[str, Any]] = {}
        self.modes: dict[str, list[dict[str, Any]]] = {}
        self.current_mode: dict[str, str] = {}
        self.scenes: dict[str, dict[str, Any]] = {}
        self.scenes_executed: list[str] = []
        server.route("GET", r"/locations", self._list)
        server.route("GET", r"/locations/([^/]+)", self._get)
        server.route("GET", r"/locations/([^/]+)/modes", self._list_modes)
        server.route("GET", r"/locations/([^/]+)/modes/current", self._get_current_mode)
        server.route("PUT", r"/locations/([^/]+)/modes/current", self._set_current_mode)
        server.route("GET", r"/scenes", self._list_scenes)
        server.route("POST", r"/scenes/([^/]+)/execute", self._execute_scene)

    def add(self, location_id: str, *, name: str = "Home", time_zone_id: str | None = "UTC",
            modes: Iterable[str] = ("Home", "Away", "Night")) -> dict[str, Any]:
        """A location; each mode's id is `<location_id>-<label>` (lower case); the first mode is current."""
        location: dict[str, Any] = {"locationId": location_id, "name": name}
        if time_zone_id is not None:
            location["timeZoneId"] = time_zone_id
        made = [{"id": f"{location_id}-{label.lower()}", "label": label, "name": label} for label in modes]
        with self._lock:
            self.locations[location_id] = location
            self.modes[location_id] = made
            if made:
                self.current_mode[location_id] = made[0]["id"]
        return location

    def add_scene(self, location_id: str, scene_id: str, name: str = "") -> dict[str, Any]:
        scene = {"sceneId": scene_id, "sceneName": name or scene_id, "locationId": location_id}
        with self._lock:
            self.scenes[scene_id] = scene
        return scene

    def _list(self, call: Call, match: re.Match) -> Reply:
        with self._lock:
            found = list(self.locations.values())
        return self.paged(call, found)

    def _get(self, call: Call, match: re.Match) -> Reply:
        with self._lock:
            location = self.locations.get(*segments(match))
        return Reply(200, location) if location else error_reply(404, "NotFoundError", "no such location")

    def _list_modes(self, call: Call, match: re.Match) -> Reply:
        with self._lock:
            modes = self.modes.get(*segments(match))
        if modes is None:
            return error_reply(404, "NotFoundError", "no such location")
        return self.paged(call, modes)

    def _get_current_mode(self, call: Call, match: re.Match) -> Reply:
        (location_id,) = segments(match)
        with self._lock:
            current = self.current_mode.get(location_id)
            mode = next((mode for mode in self.modes.get(location_id, []) if mode["id"] == current), None)
        return Reply(200, mode) if mode else error_reply(404, "NotFoundError", "no such location")

    def _set_current_mode(self, call: Call, match: re.Match) -> Reply:
        (location_id,) = segments(match)
        try:
            mode_id = call.json().get("modeId")
        except (ValueError, AttributeError):
            mode_id = None
        with self._lock:
            mode = next((mode for mode in self.modes.get(location_id, []) if mode["id"] == mode_id), None)
            if mode is None:
                return error_reply(422, "ConstraintViolationError", "no such mode in this location")
            self.current_mode[location_id] = mode["id"]
        return Reply(200, mode)

    def _list_scenes(self, call: Call, match: re.Match) -> Reply:
        wanted = set(call.query.get("locationId", []))
        with self._lock:
            found = [scene for scene in self.scenes.values() if not wanted or scene["locationId"] in wanted]
        return self.paged(call, found)

    def _execute_scene(self, call: Call, match: re.Match) -> Reply:
        (scene_id,) = segments(match)
        with self._lock:
            if scene_id not in self.scenes:
                return error_reply(404, "NotFoundError", "no such scene")
            self.scenes_executed.append(scene_id)
        return Reply(200, {"status": "success"})
