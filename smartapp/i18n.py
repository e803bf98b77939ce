"""Page texts translated from `<locales_dir>/<language>.json`, read and checked once at start.

A locale file maps a page id, section key or setting id to its texts (ids share one namespace):

    {"mainPage": {"name": "Licht folgt Sensoren", "nextText": "Weiter"},
     "devices": {"name": "Geräte"},
     "sensors": {"name": "Welche Sensoren?", "description": "Tippen zum Auswählen"},
     "color": {"name": "Farbe", "options": {"red": "Rot"}, "groups": {"Warm": "Warme Farben"}},
     "message": {"name": "Nachricht", "defaultValue": "Tür offen", "postMessage": "Zeichen"}}

A text is taken from the request's exact locale (de-DE.json), then its language (de.json), then English
(en.json), then the code, then the id. Request locales are only looked up among the files found at start.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from smartapp.settings import ConfigError

ENGLISH = "en"
_TAG = re.compile(r"[a-z]{2,8}(-[a-z0-9]{1,8})*")
_KEY = re.compile(r"[A-Za-z0-9.\-_]{1,128}")
_MAX_LOCALE_LENGTH = 64
_MAX_REMEMBERED_LOCALES = 256
# The same limits SmartThings puts on the texts in the page JSON.
_TEXT_LIMITS = {"name": 128, "description": 2048, "nextText": 128, "postMessage": 10, "defaultValue": 128}
_NAME_MAPS = ("options", "groups")

Catalog = Mapping[str, Mapping[str, Any]]


class LocaleError(ConfigError):
    """A locale file cannot be used; `problems` names each file and what is wrong with it."""


@dataclass(frozen=True)
class Translator:
    """The texts for one locale: the first catalog of the chain (exact, language, English) that has one wins."""

    language: str | None
    catalogs: tuple[Catalog, ...] = ()

    def __call__(self, key: str, *path: str) -> str | None:
        for catalog in self.catalogs:
            found: Any = catalog.get(key)
            for part in path:
                # Catalogs come from JSON: a dict is checked without Mapping's slower ABC test.
                found = found.get(part) if type(found) is dict or isinstance(found, Mapping) else None
            if isinstance(found, str):
                return found
        return None


class Locales:
    """Every locale file of an app, keyed by lower-case language tag; `translator` never touches the disk."""

    def __init__(self, catalogs: Mapping[str, Catalog] | None = None) -> None:
        self._catalogs = dict(catalogs or {})
        # Locale strings seen, by their translator: a request's locale is one of a few, worked out once.
        self._translators: dict[str | None, Translator] = {}

    @property
    def languages(self) -> list[str]:
        return sorted(self._catalogs)

    def translator(self, locale: str | None) -> Translator:
        """Texts for a request's locale ("de-DE", "de_de", "en"); anything unrecognised gets English."""
        rememberable = locale is None or isinstance(locale, str)  # a malformed body may send any JSON value
        translator = self._translators.get(locale) if rememberable else None
        if translator is None:
            chain = [tag for tag in _candidates(locale) if tag in self._catalogs]
            translator = Translator(chain[0] if chain else None, tuple(self._catalogs[tag] for tag in chain))
            # Untrusted strings: remember a bounded number (real locales are a handful).
            if rememberable and len(self._translators) < _MAX_REMEMBERED_LOCALES:
                self._translators[locale] = translator
        return translator


def load_locales(directory: str | os.PathLike[str] | None) -> Locales:
    """Read and check every `*.json` in `directory` (none when it is missing); LocaleError lists all problems."""
    if directory is None or not Path(directory).exists():
        return Locales()
    folder = Path(directory)
    if not folder.is_dir():
        raise LocaleError([f"{folder}: the locales directory is not a directory"])
    catalogs: dict[str, Catalog] = {}
    problems: list[str] = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith(".") or not path.is_file():
            continue
        tag = path.stem.replace("_", "-").lower()
        if not _TAG.fullmatch(tag):
            problems.append(f"{path}: the file name must be a language tag such as en.json or de-DE.json")
        elif tag in catalogs:
            problems.append(f"{path}: a second file for language {tag!r}")
        else:
            try:
                catalogs[tag] = _read_catalog(path)
            except LocaleError as error:
                problems.extend(error.problems)
    if problems:
        raise LocaleError(problems)
    return Locales(catalogs)


def _candidates(locale: str | None) -> list[str]:
    """The tags to try for an untrusted locale string, most specific first, English last."""
    tags: list[str] = []
    if isinstance(locale, str) and len(locale) <= _MAX_LOCALE_LENGTH:
        tag = re.split(r"[,;]", locale, maxsplit=1)[0].strip().replace("_", "-").lower()
        if _TAG.fullmatch(tag):
            tags += [tag, tag.split("-", 1)[0]]
    tags.append(ENGLISH)
    return list(dict.fromkeys(tags))


def _read_catalog(path: Path) -> Catalog:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError:
        raise LocaleError([f"{path}: not UTF-8 text"]) from None
    except json.JSONDecodeError as error:
        raise LocaleError([f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"]) \
            from None
    except _DuplicateKey as error:
        raise LocaleError([f"{path}: the key {error.key!r} appears twice in one object"]) from None
    except OSError as error:
        raise LocaleError([f"{path}: cannot be read ({error.strerror or error})"]) from None
    if not isinstance(data, dict):
        raise LocaleError([f"{path}: must be a JSON object of ids to texts"])
    problems = [problem for key, texts in data.items() for problem in _entry_problems(key, texts)]
    if problems:
        raise LocaleError([f"{path}: {problem}" for problem in problems])
    return data


def _entry_problems(key: str, texts: object) -> list[str]:
    if not _KEY.fullmatch(key):
        return [f"{key!r} is not a page id, section key or setting id (1-128 of A-Z a-z 0-9 . - _)"]
    if not isinstance(texts, dict):
        return [f"{key!r} must map to an object such as {{\"name\": \"...\"}}"]
    problems = []
    for field, value in texts.items():
        where = f"{key}.{field}"
        if field in _TEXT_LIMITS:
            problems += _text_problems(where, value, _TEXT_LIMITS[field])
        elif field in _NAME_MAPS:
            if not isinstance(value, dict):
                problems.append(f"{where} must be an object of ids to names")
                continue
            for name_id, name in value.items():
                problems += _text_problems(f"{where}.{name_id}", name, _TEXT_LIMITS["name"])
        else:
            known = ", ".join([*_TEXT_LIMITS, *_NAME_MAPS])
            problems.append(f"{where} is not a known text (known: {known})")
    return problems


def _text_problems(where: str, value: object, limit: int) -> list[str]:
    if not isinstance(value, str) or not value:
        return [f"{where} must be non-empty text (leave it out to fall back to English)"]
    if len(value) > limit:
        return [f"{where} is {len(value)} characters; SmartThings allows at most {limit}"]
    return []


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found
