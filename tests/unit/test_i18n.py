"""Translated page texts: the fallback chain, untrusted locale strings, and locale files checked at start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartapp.i18n import LocaleError, Locales, load_locales
from smartapp.pages import Page
from smartapp.settings import ConfigError


def write(folder: Path, name: str, content: object) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


@pytest.fixture
def locales_dir(tmp_path) -> Path:
    folder = tmp_path / "locales"
    folder.mkdir()
    write(folder, "de-DE.json", {"sensors": {"name": "Welche Sensoren (DE)?"}})
    write(folder, "de.json", {"sensors": {"name": "Welche Sensoren?", "description": "Tippen zum Auswählen"},
                              "lights": {"name": "Welche Lichter?"}, "devices": {"name": "Geräte"},
                              "color": {"options": {"red": "Rot"}}})
    write(folder, "en.json", {"offDelayMinutes": {"name": "Minutes until off"}, "mainPage": {"name": "Main"}})
    return folder


def sample_page() -> Page:
    page = Page("mainPage")
    section = page.section("devices", name="Devices")
    section.device("sensors", capability="contactSensor", name="Which sensors?")
    section.device("lights", capability="switch", permissions="rx", name="Which lights?")
    section.number("offDelayMinutes", default=5, min=0, name="Off delay")
    section.enum("color", options={"red": "Red", "blue": "Blue"}, name="Colour")
    section.boolean("flag")
    return page


def texts(page_json: dict) -> dict:
    """Setting id -> (name, description) of a rendered page."""
    return {setting["id"]: (setting["name"], setting.get("description"))
            for section in page_json["sections"] for setting in section["settings"]}


def test_each_text_falls_back_exact_then_language_then_english_then_code_then_id(locales_dir):
    body = sample_page().to_json(load_locales(locales_dir).translator("de-DE"))
    assert texts(body) == {
        "sensors": ("Welche Sensoren (DE)?", "Tippen zum Auswählen"),  # name from de-DE, description from de
        "lights": ("Welche Lichter?", None),                             # de
        "offDelayMinutes": ("Minutes until off", None),                  # en
        "color": ("Colour", None),                                       # the code's text
        "flag": ("flag", None),                                          # the id
    }
    assert body["name"] == "Main" and body["sections"][0]["name"] == "Geräte"
    assert body["sections"][0]["settings"][3]["options"] == [{"id": "red", "name": "Rot"},
                                                             {"id": "blue", "name": "Blue"}]


@pytest.mark.parametrize("locale, language, sensors_name", [
    ("de-DE", "de-de", "Welche Sensoren (DE)?"),
    ("de_de", "de-de", "Welche Sensoren (DE)?"),
    ("DE-de", "de-de", "Welche Sensoren (DE)?"),
    ("de-AT", "de", "Welche Sensoren?"),
    ("de", "de", "Welche Sensoren?"),
    ("de-DE,de;q=0.9", "de-de", "Welche Sensoren (DE)?"),
    ("en-US", "en", "Which sensors?"),
    ("fr", "en", "Which sensors?"),
    ("", "en", "Which sensors?"),
    (None, "en", "Which sensors?"),
])
def test_the_locale_string_chooses_the_files(locales_dir, locale, language, sensors_name):
    translator = load_locales(locales_dir).translator(locale)
    assert translator.language == language
    assert texts(sample_page().to_json(translator))["sensors"][0] == sensors_name


@pytest.mark.parametrize("locale", [
    "../../etc/passwd", "../secret", "..", "de/../../secret", "/etc/passwd", "secret\x00", "de-DE" + "x" * 100,
    "%2e%2e%2fsecret", 42, ["de"],
])
def test_a_hostile_locale_never_reaches_the_filesystem(locales_dir, monkeypatch, locale):
    write(locales_dir.parent, "secret.json", {"sensors": {"name": "LEAKED"}})
    write(locales_dir.parent, "passwd.json", {"sensors": {"name": "LEAKED"}})
    locales = load_locales(locales_dir)

    def no_disk(*args, **kwargs):
        raise AssertionError("a request's locale touched the filesystem")

    monkeypatch.setattr("builtins.open", no_disk)
    monkeypatch.setattr(Path, "read_text", no_disk)
    monkeypatch.setattr(Path, "exists", no_disk)
    translator = locales.translator(locale)
    assert translator.language == "en"
    assert texts(sample_page().to_json(translator))["sensors"][0] == "Which sensors?"


def test_files_are_read_once_at_start(locales_dir):
    locales = load_locales(locales_dir)
    write(locales_dir, "de.json", {"sensors": {"name": "changed on disk"}})
    (locales_dir / "de-DE.json").unlink()
    assert locales.translator("de-DE")("sensors", "name") == "Welche Sensoren (DE)?"
    assert locales.languages == ["de", "de-de", "en"]


def test_a_missing_directory_means_no_translations(tmp_path):
    for locales in (load_locales(tmp_path / "nowhere"), load_locales(None), Locales()):
        translator = locales.translator("de-DE")
        assert translator.language is None and translator("sensors", "name") is None
        assert texts(sample_page().to_json(translator))["sensors"][0] == "Which sensors?"


def test_other_files_in_the_directory_are_ignored(locales_dir):
    write(locales_dir, "README.md", "not a locale")
    write(locales_dir, ".de.json.swp.json", "{ unfinished")
    (locales_dir / "drafts.json").mkdir()
    assert load_locales(locales_dir).languages == ["de", "de-de", "en"]


def test_texts_for_pages_sections_groups_and_text_defaults(tmp_path):
    write(tmp_path, "fr.json", {"setup": {"name": "Réglages", "nextText": "Suivant"}, "timing": {"name": "Délai"},
                                "flavour": {"groups": {"Fruit": "Fruits"}, "options": {"lemon": "Citron"}},
                                "message": {"defaultValue": "Porte ouverte", "postMessage": "car."}})
    page = Page("setup", next_page="other")
    section = page.section("timing")
    section.enum("flavour", grouped_options={"Fruit": ["lemon"]})
    section.text("message", default="Door open")
    body = page.to_json(load_locales(tmp_path).translator("fr-CA"))
    assert (body["name"], body["nextText"], body["sections"][0]["name"]) == ("Réglages", "Suivant", "Délai")
    flavour, message = body["sections"][0]["settings"]
    assert flavour["groupedOptions"] == [{"name": "Fruits", "options": [{"id": "lemon", "name": "Citron"}]}]
    assert (message["defaultValue"], message["postMessage"]) == ("Porte ouverte", "car.")


def test_a_byte_order_mark_is_tolerated(tmp_path):
    (tmp_path / "de.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"sensors": {"name": "Sensoren"}}).encode())
    assert load_locales(tmp_path).translator("de")("sensors", "name") == "Sensoren"


@pytest.mark.parametrize("name, content, message", [
    ("de.json", '{"sensors": {"name": "Sensoren",}}', r"de\.json: not valid JSON \(line 1, column"),
    ("de.json", b"\xff\xfe{}", r"de\.json: not UTF-8 text"),
    ("de.json", '["sensors"]', r"de\.json: must be a JSON object"),
    ("de.json", '{"sensors": "Sensoren"}', r"'sensors' must map to an object"),
    ("de.json", '{"sensors": {"desc": "Sensoren"}}', r"sensors\.desc is not a known text"),
    ("de.json", '{"sensors": {"name": 5}}', r"sensors\.name must be non-empty text"),
    ("de.json", '{"sensors": {"name": ""}}', r"sensors\.name must be non-empty text"),
    ("de.json", json.dumps({"sensors": {"name": "n" * 129}}), r"sensors\.name is 129 characters"),
    ("de.json", '{"color": {"options": ["red"]}}', r"color\.options must be an object"),
    ("de.json", '{"color": {"options": {"red": null}}}', r"color\.options\.red must be non-empty text"),
    ("de.json", '{"a b": {"name": "x"}}', r"'a b' is not a page id"),
    ("de.json", '{"sensors": {"name": "a"}, "sensors": {"name": "b"}}', r"'sensors' appears twice"),
    ("my file.json", "{}", r"my file\.json: the file name must be a language tag"),
])
def test_a_malformed_locale_file_stops_the_start_with_a_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(LocaleError, match=message) as raised:
        load_locales(tmp_path)
    assert isinstance(raised.value, ConfigError)


def test_every_bad_file_is_named_at_once(tmp_path):
    write(tmp_path, "de.json", "{")
    write(tmp_path, "fr.json", {"x": {"nom": "y"}})
    write(tmp_path, "de_DE.json", {})
    write(tmp_path, "de-de.json", {})
    with pytest.raises(LocaleError) as raised:
        load_locales(tmp_path)
    problems = raised.value.problems
    assert len(problems) == 3
    assert any("de.json: not valid JSON" in problem for problem in problems)
    assert any("fr.json: x.nom is not a known text" in problem for problem in problems)
    assert any("a second file for language 'de-de'" in problem for problem in problems)


def test_a_locales_path_that_is_a_file_is_an_error(tmp_path):
    path = write(tmp_path, "locales", "{}")
    with pytest.raises(LocaleError, match="not a directory"):
        load_locales(path)
