"""Configuration pages built in Python: pages, sections and settings, checked when built, rendered as page JSON."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

# SmartThings' own limits (SmartApp API schema); a page the platform would refuse fails here, at build time.
_SETTING_ID = re.compile(r"[A-Za-z0-9.\-_]{1,128}")
_PAGE_ID = re.compile(r"[A-Za-z0-9.\-_]{1,36}")
_MAX_NAME = 128
_MAX_DESCRIPTION = 2048
_MAX_DEFAULT = 128
_MAX_URL = 2048
_MAX_POST_MESSAGE = 10
_SETTING_STYLES = ("COMPLETE", "ERROR", "DEFAULT")
_ENUM_STYLES = _SETTING_STYLES + ("DROPDOWN",)
_DEVICE_PERMISSIONS = ("r", "w", "x")
_POST_MESSAGE_TYPES = ("TEXT", "NUMBER", "DECIMAL")

Options = Mapping[str, str] | Sequence[str | tuple[str, str] | Mapping[str, str]]


# -- checks ---------------------------------------------------------------------------------------------------

def _page_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _PAGE_ID.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be 1-36 of A-Z a-z 0-9 . - _")
    return value


def _text(value: object, what: str, limit: int, *, empty: bool = True) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters; SmartThings allows at most {limit}")
    if not empty and not value:
        raise ValueError(f"{what} must not be empty")
    return value


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be True or False, got {value!r}")
    return value


def _put_flag(fields: dict[str, Any], key: str, value: bool | None, where: str) -> None:
    if value is not None:
        fields[key] = _flag(value, f"{where}: {key}")


def _put_url(fields: dict[str, Any], key: str, value: str | None, where: str) -> None:
    if value is not None:
        fields[key] = _text(value, f"{where}: {key}", _MAX_URL, empty=False)


def _put_post_message(fields: dict[str, Any], text: str | None, where: str) -> None:
    if text is not None:
        fields["postMessage"] = _text(text, f"{where}: post_message", _MAX_POST_MESSAGE)


def _put_style(fields: dict[str, Any], style: str | None, allowed: tuple[str, ...], where: str) -> None:
    if style is None:
        return
    if style not in allowed:
        raise ValueError(f"{where}: style must be one of {', '.join(allowed)}, got {style!r}")
    fields["style"] = style


def _common(where: str, *, required: bool, disabled: bool | None = None, submit_on_change: bool | None = None,
            default: str | bool | float | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"required": _flag(required, f"{where}: required")}
    if default is not None:
        fields["defaultValue"] = _default_text(default, where)
    _put_flag(fields, "disabled", disabled, where)
    _put_flag(fields, "submitOnChange", submit_on_change, where)
    return fields


def _default_text(value: str | bool | float, where: str) -> str:
    """SmartThings wants every default as a string: booleans "true"/"false", numbers as written."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = value
    return _text(text, f"{where}: default", _MAX_DEFAULT)


def _str_default(value: object, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}: default must be text, got {type(value).__name__}")
    return value


def _put_lengths(fields: dict[str, Any], min_length: int | None, max_length: int | None, default: str | None,
                 where: str) -> None:
    for label, value in (("min_length", min_length), ("max_length", max_length)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{where}: {label} must be a whole number of at least 0, got {value!r}")
    if min_length is not None and max_length is not None and min_length > max_length:
        raise ValueError(f"{where}: min_length {min_length} is above max_length {max_length}")
    if default is not None and ((min_length is not None and len(default) < min_length)
                                or (max_length is not None and len(default) > max_length)):
        raise ValueError(f"{where}: the default's length is outside [min_length, max_length]")
    if min_length is not None:
        fields["minLength"] = min_length
    if max_length is not None:
        fields["maxLength"] = max_length


def _names(values: object, what: str) -> tuple[str, ...]:
    if type(values) not in (list, tuple) and (isinstance(values, str) or not isinstance(values, Sequence)) \
            or not values:
        raise ValueError(f"{what} must be a non-empty list of names")
    return tuple(_text(value, what, _MAX_NAME, empty=False) for value in values)


def _device_permissions(value: object, where: str) -> tuple[str, ...]:
    """"rx", "r x" or ["r", "x"] -> ("r", "x"): r reads, x sends commands, w changes the device."""
    if isinstance(value, str):
        letters = [letter for letter in value if not letter.isspace() and letter != ","]
    elif isinstance(value, Sequence) and all(isinstance(letter, str) for letter in value):
        letters = list(value)
    else:
        raise ValueError(f"{where}: permissions must be like \"rx\" or [\"r\", \"x\"], got {value!r}")
    unknown = [letter for letter in letters if letter not in _DEVICE_PERMISSIONS]
    if unknown or not letters:
        raise ValueError(f"{where}: permissions are made of r, x and w, got {value!r}")
    return tuple(dict.fromkeys(letters))


def _options(options: object, where: str) -> tuple[tuple[str, str], ...]:
    if isinstance(options, Mapping):
        pairs = list(options.items())
    elif isinstance(options, Sequence) and not isinstance(options, str):
        pairs = [_option_pair(option, where) for option in options]
    else:
        raise ValueError(f"{where}: options must be a mapping of id to name, or a list of ids or (id, name) pairs")
    if not pairs:
        raise ValueError(f"{where}: options must not be empty")
    return tuple((_text(option_id, f"{where}: option id", _MAX_NAME, empty=False),
                  _text(name, f"{where}: option {option_id!r} name", _MAX_NAME, empty=False))
                 for option_id, name in pairs)


def _option_pair(option: object, where: str) -> tuple[object, object]:
    if isinstance(option, str):
        return option, option
    if isinstance(option, Mapping) and set(option) == {"id", "name"}:
        return option["id"], option["name"]
    if isinstance(option, (tuple, list)) and len(option) == 2:
        return option[0], option[1]
    raise ValueError(f"{where}: an option must be an id, an (id, name) pair or {{\"id\", \"name\"}}, got {option!r}")


def _groups(grouped: object, where: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    if isinstance(grouped, Mapping):
        pairs = list(grouped.items())
    elif isinstance(grouped, Sequence) and not isinstance(grouped, str) \
            and all(isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in grouped):
        pairs = list(grouped)
    else:
        raise ValueError(f"{where}: grouped_options must map each group's name to its options")
    if not pairs:
        raise ValueError(f"{where}: grouped_options must not be empty")
    return tuple((_text(group, f"{where}: group name", _MAX_NAME, empty=False), _options(options, where))
                 for group, options in pairs)


class Translate(Protocol):
    """A translated text or None: `translate("sensors", "name")`, `translate("color", "options", "red")`."""

    def __call__(self, key: str, *path: str) -> str | None: ...


def _untranslated(key: str, *path: str) -> str | None:
    return None


@dataclass(frozen=True)
class Setting:
    """One setting as built; `fields` holds its other wire fields (camelCase) except the translatable texts."""

    id: str
    type: str
    name: str | None = None
    description: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    options: tuple[tuple[str, str], ...] = ()
    groups: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    @property
    def required(self) -> bool:
        return self.fields.get("required") is True

    @property
    def multiple(self) -> bool:
        return self.fields.get("multiple") is True

    @property
    def default(self) -> str | None:
        return self.fields.get("defaultValue")

    @property
    def capabilities(self) -> tuple[str, ...]:
        return tuple(self.fields.get("capabilities", ()))

    @property
    def permissions(self) -> tuple[str, ...]:
        """A DEVICE setting's device permissions ("r", "x", "w"); empty for other types."""
        return tuple(self.fields.get("permissions", ()))

    @property
    def scopes(self) -> tuple[str, ...]:
        """The app scopes this setting needs: its permissions on every device, locations for modes, scenes."""
        if self.type == "DEVICE":
            return tuple(f"{permission}:devices:*" for permission in self.permissions)
        if self.type == "MODE":
            return ("r:locations:*",)
        if self.type == "SCENE":
            # A chosen scene is there to be run; reading it alone is of no use to an automation.
            return ("r:scenes:*", "x:scenes:*")
        return ()

    def to_json(self, translate: Translate = _untranslated) -> dict[str, Any]:
        """The setting's JSON; a text missing from the translations is the code's text, a missing name the id."""
        result: dict[str, Any] = {"id": self.id, "name": translate(self.id, "name") or self.name or self.id}
        description = translate(self.id, "description") or self.description
        if description is not None:
            result["description"] = description
        result["type"] = self.type
        for key, value in self.fields.items():
            result[key] = list(value) if isinstance(value, tuple) else value
        if self.type in _POST_MESSAGE_TYPES:
            _put_translated(result, "postMessage", translate(self.id, "postMessage"))
        if self.type == "TEXT":
            _put_translated(result, "defaultValue", translate(self.id, "defaultValue"))
        if self.options:
            result["options"] = self._options_json(self.options, translate)
        if self.groups:
            result["groupedOptions"] = [{"name": translate(self.id, "groups", group) or group,
                                         "options": self._options_json(options, translate)}
                                        for group, options in self.groups]
        return result

    def _options_json(self, options: tuple[tuple[str, str], ...], translate: Translate) -> list[dict[str, str]]:
        return [{"id": option_id, "name": translate(self.id, "options", option_id) or name}
                for option_id, name in options]


class Section:
    """A titled group of settings on a page; every setting method returns the section, so calls can chain."""

    def __init__(self, page: Page, key: str, *, name: str | None = None, hideable: bool = False,
                 hidden: bool = False, style: str | None = None) -> None:
        self._page = page
        self.key = key
        self.name = _text(name, f"section {key!r}: name", _MAX_NAME)
        self.hideable = _flag(hideable, f"section {key!r}: hideable")
        self.hidden = _flag(hidden, f"section {key!r}: hidden")
        self.style = _text(style, f"section {key!r}: style", _MAX_NAME)
        self.settings: list[Setting] = []

    def to_json(self, translate: Translate = _untranslated) -> dict[str, Any]:
        """The section's JSON; name="" in code (and no translation) gives a section without a title."""
        result: dict[str, Any] = {}
        name = translate(self.key, "name") or (self.key if self.name is None else self.name)
        if name:
            result["name"] = name
        result["hideable"] = self.hideable
        result["hidden"] = self.hidden
        if self.style is not None:
            result["style"] = self.style
        result["settings"] = [setting.to_json(translate) for setting in self.settings]
        return result

    # -- choosers ---------------------------------------------------------------------------------------------

    def device(self, setting_id: str, *, name: str | None = None, description: str | None = None,
               capability: str | None = None, capabilities: Sequence[str] | None = None,
               exclude_capabilities: Sequence[str] | None = None, multiple: bool = False, required: bool = False,
               permissions: str | Sequence[str] = "r", preselect: bool | None = None,
               close_on_selection: bool | None = None, submit_on_change: bool | None = None,
               disabled: bool | None = None, style: str | None = None) -> Section:
        """Devices the user picks; `permissions` "rx" (or ["r", "x"]) lets the app read and command them."""
        where = f"setting {setting_id!r}"
        if capability is not None and capabilities is not None:
            raise ValueError(f"{where}: give capability= or capabilities=, not both")
        chosen = [capability] if capability is not None else capabilities
        fields = _common(where, required=required, disabled=disabled, submit_on_change=submit_on_change)
        fields["multiple"] = _flag(multiple, f"{where}: multiple")
        if chosen is not None:
            fields["capabilities"] = _names(chosen, f"{where}: capabilities")
        if exclude_capabilities is not None:
            fields["excludeCapabilities"] = _names(exclude_capabilities, f"{where}: exclude_capabilities")
        fields["permissions"] = _device_permissions(permissions, where)
        _put_flag(fields, "preselect", preselect, where)
        _put_flag(fields, "closeOnSelection", close_on_selection, where)
        _put_style(fields, style, _SETTING_STYLES, where)
        return self._add(setting_id, "DEVICE", name, description, fields)

    def enum(self, setting_id: str, *, options: Options | None = None,
             grouped_options: Mapping[str, Options] | Sequence[tuple[str, Options]] | None = None,
             name: str | None = None, description: str | None = None, multiple: bool = False,
             required: bool = False, default: str | None = None, close_on_selection: bool | None = None,
             submit_on_change: bool | None = None, disabled: bool | None = None, style: str | None = None) -> Section:
        """A choice among options: {"id": "Name"}, a list of ids, or (id, name) pairs; or groups of those."""
        where = f"setting {setting_id!r}"
        if (options is None) == (grouped_options is None):
            raise ValueError(f"{where}: an enum needs options= or grouped_options= (exactly one)")
        if options is not None:
            parsed_options = _options(options, where)
            groups: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
            every_option = parsed_options
        else:
            parsed_options = ()
            groups = _groups(grouped_options, where)
            every_option = tuple(option for _, group in groups for option in group)
        option_ids = [option_id for option_id, _ in every_option]
        repeated = sorted({option_id for option_id in option_ids if option_ids.count(option_id) > 1})
        if repeated:
            raise ValueError(f"{where}: option ids must be unique, {', '.join(map(repr, repeated))} repeated")
        if default is not None and default not in option_ids:
            raise ValueError(f"{where}: default {default!r} is not one of the option ids")
        fields = _common(where, required=required, disabled=disabled, submit_on_change=submit_on_change,
                         default=default)
        fields["multiple"] = _flag(multiple, f"{where}: multiple")
        _put_flag(fields, "closeOnSelection", close_on_selection, where)
        _put_style(fields, style, _ENUM_STYLES, where)
        return self._add(setting_id, "ENUM", name, description, fields, options=parsed_options, groups=groups)

    def mode(self, setting_id: str, *, name: str | None = None, description: str | None = None,
             multiple: bool = False, required: bool = False, close_on_selection: bool | None = None,
             submit_on_change: bool | None = None, disabled: bool | None = None, style: str | None = None) -> Section:
        """One or more of the location's modes (the app then needs `r:locations:*`)."""
        return self._chooser("MODE", setting_id, name, description, multiple, required, close_on_selection,
                             submit_on_change, disabled, style)

    def scene(self, setting_id: str, *, name: str | None = None, description: str | None = None,
              multiple: bool = False, required: bool = False, close_on_selection: bool | None = None,
              submit_on_change: bool | None = None, disabled: bool | None = None, style: str | None = None) -> Section:
        """One or more of the location's scenes (the app then needs `r:scenes:*` and `x:scenes:*`)."""
        return self._chooser("SCENE", setting_id, name, description, multiple, required, close_on_selection,
                             submit_on_change, disabled, style)

    # -- inputs -----------------------------------------------------------------------------------------------

    def boolean(self, setting_id: str, *, name: str | None = None, description: str | None = None,
                required: bool = False, default: bool | None = None, image: str | None = None,
                submit_on_change: bool | None = None, disabled: bool | None = None) -> Section:
        """An on/off toggle; a required one without a default starts "false", as SmartThings expects."""
        where = f"setting {setting_id!r}"
        if default is not None and not isinstance(default, bool):
            raise ValueError(f"{where}: default must be True or False, got {default!r}")
        if default is None and required is True:
            default = False
        fields = _common(where, required=required, disabled=disabled, submit_on_change=submit_on_change,
                         default=default)
        _put_url(fields, "image", image, where)
        return self._add(setting_id, "BOOLEAN", name, description, fields)

    def text(self, setting_id: str, *, name: str | None = None, description: str | None = None,
             required: bool = False, default: str | None = None, min_length: int | None = None,
             max_length: int | None = None, image: str | None = None, post_message: str | None = None,
             submit_on_change: bool | None = None, disabled: bool | None = None) -> Section:
        """Free text; `post_message` (at most 10 characters) is shown after the field."""
        where = f"setting {setting_id!r}"
        fields = _common(where, required=required, disabled=disabled, submit_on_change=submit_on_change,
                         default=_str_default(default, where))
        _put_lengths(fields, min_length, max_length, default, where)
        _put_url(fields, "image", image, where)
        _put_post_message(fields, post_message, where)
        return self._add(setting_id, "TEXT", name, description, fields)

    def password(self, setting_id: str, *, name: str | None = None, description: str | None = None,
                 required: bool = False, min_length: int | None = None, max_length: int | None = None,
                 image: str | None = None, submit_on_change: bool | None = None,
                 disabled: bool | None = None) -> Section:
        """Hidden text; it arrives in the installation's config like any other value, so treat it as a secret."""
        where = f"setting {setting_id!r}"
        fields = _common(where, required=required, disabled=disabled, submit_on_change=submit_on_change)
        _put_lengths(fields, min_length, max_length, None, where)
        _put_url(fields, "image", image, where)
        return self._add(setting_id, "PASSWORD", name, description, fields)

    def email(self, setting_id: str, *, name: str | None = None, description: str | None = None,
              required: bool = False, default: str | None = None, image: str | None = None,
              submit_on_change: bool | None = None, disabled: bool | None = None) -> Section:
        return self._plain("EMAIL", setting_id, name, description, required, default, image, submit_on_change,
                           disabled)

    def phone(self, setting_id: str, *, name: str | None = None, description: str | None = None,
              required: bool = False, default: str | None = None, image: str | None = None,
              submit_on_change: bool | None = None, disabled: bool | None = None) -> Section:
        return self._plain("PHONE", setting_id, name, description, required, default, image, submit_on_change,
                           disabled)

    def time(self, setting_id: str, *, name: str | None = None, description: str | None = None,
             required: bool = False, default: str | None = None, image: str | None = None,
             submit_on_change: bool | None = None, disabled: bool | None = None) -> Section:
        """A time of day; the installation's config holds it as an ISO date-time string."""
        return self._plain("TIME", setting_id, name, description, required, default, image, submit_on_change,
                           disabled)

    def number(self, setting_id: str, *, name: str | None = None, description: str | None = None,
               required: bool = False, default: int | None = None, min: int | None = None,
               max: int | None = None, step: int | None = None, image: str | None = None,
               post_message: str | None = None, submit_on_change: bool | None = None,
               disabled: bool | None = None) -> Section:
        """A whole number within [min, max]."""
        where = f"setting {setting_id!r}"
        for label, value in (("default", default), ("min", min), ("max", max), ("step", step)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{where}: {label} must be a whole number, got {value!r}")
        if step is not None and step <= 0:
            raise ValueError(f"{where}: step must be above 0, got {step}")
        fields = self._numeric(where, required, default, min, max, image, post_message, submit_on_change, disabled)
        if step is not None:
            fields["step"] = step
        return self._add(setting_id, "NUMBER", name, description, fields)

    def decimal(self, setting_id: str, *, name: str | None = None, description: str | None = None,
                required: bool = False, default: float | None = None, min: float | None = None,
                max: float | None = None, image: str | None = None, post_message: str | None = None,
                submit_on_change: bool | None = None, disabled: bool | None = None) -> Section:
        """A number with a fractional part within [min, max]."""
        where = f"setting {setting_id!r}"
        for label, value in (("default", default), ("min", min), ("max", max)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise ValueError(f"{where}: {label} must be a finite number, got {value!r}")
        fields = self._numeric(where, required, default, min, max, image, post_message, submit_on_change, disabled)
        return self._add(setting_id, "DECIMAL", name, description, fields)

    def oauth(self, setting_id: str, url_template: str, *, name: str | None = None,
              description: str | None = None, required: bool = False, disabled: bool | None = None,
              style: str | None = None) -> Section:
        """A sign-in link to a third party; its redirect must lead to SmartThings' OAuth callback."""
        where = f"setting {setting_id!r}"
        if not url_template:
            raise ValueError(f"{where}: url_template must be the provider's authorize URL")
        fields = _common(where, required=required, disabled=disabled)
        _put_url(fields, "urlTemplate", url_template, where)
        _put_style(fields, style, _SETTING_STYLES, where)
        return self._add(setting_id, "OAUTH", name, description, fields)

    # -- display ----------------------------------------------------------------------------------------------

    def paragraph(self, setting_id: str, text: str | None = None, *, description: str | None = None,
                  image: str | None = None) -> Section:
        """Text to read; `text` is the setting's name on the wire (and "name" in a locale file)."""
        fields: dict[str, Any] = {}
        _put_url(fields, "image", image, f"setting {setting_id!r}")
        return self._add(setting_id, "PARAGRAPH", text, description, fields)

    def link(self, setting_id: str, url: str, *, name: str | None = None, description: str | None = None,
             image: str | None = None, style: str | None = None) -> Section:
        """A link out of the app; it cannot be required (SmartThings would never see it filled)."""
        where = f"setting {setting_id!r}"
        fields: dict[str, Any] = {}
        _put_url(fields, "url", url, where)
        _put_url(fields, "image", image, where)
        _put_style(fields, style, _SETTING_STYLES, where)
        return self._add(setting_id, "LINK", name, description, fields)

    def page(self, setting_id: str, page: str | None = None, *, name: str | None = None,
             description: str | None = None, image: str | None = None, style: str | None = None) -> Section:
        """A link to another page of the app (`page`, by default the setting's id); it cannot be required."""
        where = f"setting {setting_id!r}"
        fields: dict[str, Any] = {"page": _page_id(setting_id if page is None else page, f"{where}: page")}
        _put_url(fields, "image", image, where)
        _put_style(fields, style, _SETTING_STYLES, where)
        return self._add(setting_id, "PAGE", name, description, fields)

    def image(self, setting_id: str, url: str, *, name: str | None = None,
              description: str | None = None) -> Section:
        fields: dict[str, Any] = {}
        _put_url(fields, "image", url, f"setting {setting_id!r}")
        return self._add(setting_id, "IMAGE", name, description, fields)

    def images(self, setting_id: str, urls: Sequence[str], *, name: str | None = None,
               description: str | None = None) -> Section:
        where = f"setting {setting_id!r}"
        if isinstance(urls, str) or not isinstance(urls, Sequence) or not urls:
            raise ValueError(f"{where}: urls must be a non-empty list of image URLs")
        checked = tuple(_text(url, f"{where}: urls", _MAX_URL, empty=False) for url in urls)
        return self._add(setting_id, "IMAGES", name, description, {"images": checked})

    def video(self, setting_id: str, url: str, *, name: str | None = None, description: str | None = None,
              image: str | None = None) -> Section:
        where = f"setting {setting_id!r}"
        fields: dict[str, Any] = {}
        _put_url(fields, "video", url, where)
        _put_url(fields, "image", image, where)
        return self._add(setting_id, "VIDEO", name, description, fields)

    # -- shared -----------------------------------------------------------------------------------------------

    def _chooser(self, setting_type: str, setting_id: str, name: str | None, description: str | None,
                 multiple: bool, required: bool, close_on_selection: bool | None, submit_on_change: bool | None,
                 disabled: bool | None, style: str | None) -> Section:
        where = f"setting {setting_id!r}"
        fields = _common(where, required=required, disabled=disabled, submit_on_change=submit_on_change)
        fields["multiple"] = _flag(multiple, f"{where}: multiple")
        _put_flag(fields, "closeOnSelection", close_on_selection, where)
        _put_style(fields, style, _SETTING_STYLES, where)
        return self._add(setting_id, setting_type, name, description, fields)

    def _plain(self, setting_type: str, setting_id: str, name: str | None, description: str | None,
               required: bool, default: str | None, image: str | None, submit_on_change: bool | None,
               disabled: bool | None) -> Section:
        where = f"setting {setting_id!r}"
        fields = _common(where, required=required, disabled=disabled, submit_on_change=submit_on_change,
                         default=_str_default(default, where))
        _put_url(fields, "image", image, where)
        return self._add(setting_id, setting_type, name, description, fields)

    @staticmethod
    def _numeric(where: str, required: bool, default: float | None, minimum: float | None,
                 maximum: float | None, image: str | None, post_message: str | None,
                 submit_on_change: bool | None, disabled: bool | None) -> dict[str, Any]:
        if minimum is not None and maximum is not None and minimum > maximum:
            raise ValueError(f"{where}: min {minimum} is above max {maximum}")
        if default is not None and ((minimum is not None and default < minimum)
                                    or (maximum is not None and default > maximum)):
            raise ValueError(f"{where}: default {default} is outside [{minimum}, {maximum}]")
        fields = _common(where, required=required, disabled=disabled, submit_on_change=submit_on_change,
                         default=default)
        if minimum is not None:
            fields["min"] = minimum
        if maximum is not None:
            fields["max"] = maximum
        _put_url(fields, "image", image, where)
        _put_post_message(fields, post_message, where)
        return fields

    def _add(self, setting_id: str, setting_type: str, name: str | None, description: str | None,
             fields: dict[str, Any], **choices: Any) -> Section:
        where = f"setting {setting_id!r}"
        setting = Setting(id=setting_id, type=setting_type, name=_text(name, f"{where}: name", _MAX_NAME),
                          description=_text(description, f"{where}: description", _MAX_DESCRIPTION),
                          fields=fields, **choices)
        self._page._claim_setting_id(setting_id)
        self.settings.append(setting)
        return self


class _Checked:
    """A page attribute checked whenever it is set (in the constructor or later by the page handler)."""

    def __init__(self, check: Callable[[Any, str], Any]) -> None:
        self._check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self._name, self._slot = name, f"_{name}"

    def __get__(self, page: Any, owner: type | None = None) -> Any:
        return self if page is None else getattr(page, self._slot)

    def __set__(self, page: Any, value: Any) -> None:
        checked = None if value is None else self._check(value, f"page {page.id!r}: {self._name}")
        setattr(page, self._slot, checked)


def _short_text(value: object, what: str) -> str:
    return _text(value, what, _MAX_NAME)


class Page:
    """One configuration page; its settings' ids are unique on it. `complete` defaults to "no next page"."""

    name = _Checked(_short_text)
    next_page = _Checked(_page_id)
    previous_page = _Checked(_page_id)
    style = _Checked(_short_text)
    next_text = _Checked(_short_text)

    def __init__(self, page_id: str, *, name: str | None = None, next_page: str | None = None,
                 previous_page: str | None = None, complete: bool | None = None, style: str | None = None,
                 next_text: str | None = None) -> None:
        self._id = _page_id(page_id, "page id")
        self._setting_ids: set[str] = set()
        self.sections: list[Section] = []
        self.name = name
        self.next_page = next_page
        self.previous_page = previous_page
        self.complete = complete
        self.style = style
        self.next_text = next_text

    @property
    def id(self) -> str:
        return self._id

    @property
    def complete(self) -> bool:
        """True when Done installs or updates; unless set, the page without a next page is the last one."""
        return self.next_page is None if self._complete is None else self._complete

    @complete.setter
    def complete(self, value: bool | None) -> None:
        self._complete = None if value is None else _flag(value, f"page {self._id!r}: complete")

    @property
    def settings(self) -> list[Setting]:
        """Every setting on the page, in order."""
        return [setting for section in self.sections for setting in section.settings]

    def section(self, key: str, *, name: str | None = None, hideable: bool = False, hidden: bool = False,
                style: str | None = None) -> Section:
        """A new section; `key` names it in locale files, and is its title unless `name` or a translation says."""
        if not isinstance(key, str) or not _SETTING_ID.fullmatch(key):
            raise ValueError(f"page {self._id!r}: section key {key!r} must be 1-128 of A-Z a-z 0-9 . - _")
        if any(section.key == key for section in self.sections):
            raise ValueError(f"page {self._id!r}: section key {key!r} is used twice")
        made = Section(self, key, name=name, hideable=hideable, hidden=hidden, style=style)
        self.sections.append(made)
        return made

    def to_json(self, translate: Translate | None = None) -> dict[str, Any]:
        """The `configurationData.page` object, its texts in the language `translate` gives."""
        translate = translate or _untranslated
        result: dict[str, Any] = {
            "pageId": self._id,
            "name": translate(self._id, "name") or self.name or self._id,
            "nextPageId": self.next_page,
            "previousPageId": self.previous_page,
            "complete": self.complete,
        }
        if self.style is not None:
            result["style"] = self.style
        next_text = translate(self._id, "nextText") or self.next_text
        if next_text is not None:
            result["nextText"] = next_text
        result["sections"] = [section.to_json(translate) for section in self.sections]
        return result

    def _claim_setting_id(self, setting_id: str) -> None:
        if not isinstance(setting_id, str) or not _SETTING_ID.fullmatch(setting_id):
            raise ValueError(f"page {self._id!r}: setting id {setting_id!r} must be 1-128 of A-Z a-z 0-9 . - _")
        if setting_id in self._setting_ids:
            raise ValueError(f"page {self._id!r}: setting id {setting_id!r} is used twice (ids are unique on a page)")
        self._setting_ids.add(setting_id)


def scopes_of(pages: Page | Iterable[Page]) -> list[str]:
    """The app scopes the pages' settings need (sorted, unique), e.g. for `smartapp register`."""
    if isinstance(pages, Page):
        pages = [pages]
    return sorted({scope for page in pages for setting in page.settings for scope in setting.scopes})


def _put_translated(result: dict[str, Any], key: str, text: str | None) -> None:
    if text is not None:
        result[key] = text
