"""gunicorn's Date header comes from a text made once a second, the same text gunicorn would make."""

from __future__ import annotations

import email.utils
import types

import pytest
from gunicorn import util

from smartapp import gunicorn_date


@pytest.fixture
def clock(monkeypatch):
    now = types.SimpleNamespace(value=1_796_536_800.25)
    monkeypatch.setattr(gunicorn_date, "time", types.SimpleNamespace(time=lambda: now.value))
    monkeypatch.setattr(gunicorn_date, "_last", (-1, ""))
    return now


def test_the_text_is_gunicorns_for_the_current_second(clock):
    expected = "Sun, 06 Dec 2026 06:00:00 GMT"
    assert gunicorn_date.http_date() == gunicorn_date._original_http_date(clock.value) == expected


def test_one_second_reuses_its_text_and_the_next_second_makes_a_new_one(clock):
    first = gunicorn_date.http_date()
    clock.value += 0.7
    assert gunicorn_date.http_date() is first
    clock.value += 0.3
    assert gunicorn_date.http_date() == "Sun, 06 Dec 2026 06:00:01 GMT"


def test_an_explicit_timestamp_is_formatted_as_asked(clock):
    assert gunicorn_date.http_date(0) == email.utils.formatdate(0, usegmt=True)
    assert gunicorn_date.http_date() == "Sun, 06 Dec 2026 06:00:00 GMT"


def test_install_makes_gunicorns_responses_use_it(monkeypatch, clock):
    monkeypatch.setattr(util, "http_date", util.http_date)  # restored after the test
    gunicorn_date.install()
    assert util.http_date() == "Sun, 06 Dec 2026 06:00:00 GMT"
