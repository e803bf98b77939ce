"""SmartThingsApi when SmartThings says no: 401 and 429 retried once, reason codes, refused URLs, no secrets out."""

from __future__ import annotations

import pytest

from smartapp.api import ApiError
from smartapp.deadline import Deadline
from smartapp.errors import UpstreamUnavailable
from smartapp.testing import LoopbackServer, Reply
from tests.conftest import API_TOKEN, FIXED_NOW, RecordingTokens


@pytest.fixture(autouse=True)
def _every_level(caplog):
    """The retry lines are INFO; the `smartapp` logger is at WARNING unless the service configured it."""
    caplog.set_level("DEBUG", logger="smartapp")


def test_a_429_whose_reset_fits_the_budget_is_waited_out_and_retried_once(fake_st, make_api, smartapp_log):
    fake_st.rate_limit_next(1, reset=2)
    api = make_api()
    api.devices.send_command("light", "switch", "on")
    assert api.sleeps == [2.0]
    assert len(fake_st.commands_for("light")) == 1 and len(fake_st.calls_to("POST", "/devices/")) == 2
    assert smartapp_log.reasons() == ["smartthings_rate_limited"]


def test_a_429_reset_given_as_an_epoch_ms_moment_is_waited_until(fake_st, make_api):
    fake_st.rate_limit_next(1, reset=int((FIXED_NOW + 1.5) * 1000))
    api = make_api()
    api.schedules.run_in("lightsOff", 60)
    assert api.sleeps == [1.5] and len(fake_st.schedules_of("iapp-1")) == 1


def test_a_second_429_is_not_waited_for_again(fake_st, make_api):
    fake_st.rate_limit_next(2, reset=1)
    api = make_api()
    with pytest.raises(ApiError) as limited:
        api.devices.get_status("light")
    assert limited.value.reason == "smartthings_rate_limited" and limited.value.http_status == 429
    assert api.sleeps == [1.0] and len(fake_st.calls) == 2


@pytest.mark.parametrize("reset", ["30", "7.5", "soon"])
def test_a_429_that_does_not_fit_the_budget_is_raised_without_waiting(fake_st, make_api, reset):
    fake_st.rate_limit_next(1, reset=reset)
    api = make_api(deadline=Deadline.after(8.0))  # 7.5 s + the retry's own room does not fit either
    with pytest.raises(ApiError) as limited:
        api.devices.send_command("light", "switch", "on")
    assert limited.value.reason == "smartthings_rate_limited"
    assert api.sleeps == [] and len(fake_st.calls) == 1


def test_retry_after_is_read_when_there_is_no_reset_header(fake_st, make_api):
    fake_st.fail_next(1, 429, headers={"Retry-After": "3"})
    api = make_api()
    api.devices.send_command("light", "switch", "on")
    assert api.sleeps == [3.0]


def test_a_401_is_retried_once_with_the_replacement_token(fake_st, make_api, smartapp_log):
    fake_st.reject_token("expired-token")
    tokens = RecordingTokens("expired-token", replacement="fresh-token")
    api = make_api(tokens=tokens)
    api.devices.send_command(["light-a", "light-b"], "switch", "on")
    assert tokens.unauthorized == ["expired-token"]
    assert fake_st.bearer_tokens() == ["Bearer expired-token", "Bearer fresh-token", "Bearer fresh-token"]
    assert smartapp_log.reasons() == ["smartthings_unauthorized"]


def test_a_401_without_a_replacement_is_raised(fake_st, make_api):
    fake_st.reject_token(API_TOKEN)
    tokens = RecordingTokens(API_TOKEN)
    with pytest.raises(ApiError) as unauthorized:
        make_api(tokens=tokens).devices.get_status("light")
    assert unauthorized.value.reason == "smartthings_unauthorized" and unauthorized.value.http_status == 401
    assert tokens.unauthorized == [API_TOKEN] and len(fake_st.calls) == 1


def test_a_replacement_that_is_refused_too_is_not_retried_again(fake_st, make_api):
    fake_st.reject_token("expired-token")
    fake_st.reject_token("also-refused")
    tokens = RecordingTokens("expired-token", replacement="also-refused")
    with pytest.raises(ApiError) as unauthorized:
        make_api(tokens=tokens).devices.get_status("light")
    assert unauthorized.value.reason == "smartthings_unauthorized"
    assert tokens.unauthorized == ["expired-token"] and len(fake_st.calls) == 2


@pytest.mark.parametrize("status, code, reason", [
    (400, "ConstraintViolationError", "smartthings_rejected"),
    (403, "Forbidden", "smartthings_forbidden"),
    (404, "NotFoundError", "smartthings_not_found"),
    (422, "ConstraintViolationError", "smartthings_rejected"),
    (422, "LimitError", "subscription_limit"),
    (500, "InternalError", "smartthings_error"),
    (503, "ServiceUnavailable", "smartthings_error"),
])
def test_answers_map_to_reason_codes_and_an_uncaught_one_is_a_503(fake_st, make_api, status, code, reason):
    fake_st.fail_next(1, status, code=code)
    with pytest.raises(ApiError) as failure:
        make_api().devices.list()
    assert (failure.value.reason, failure.value.http_status, failure.value.code) == (reason, status, code)
    assert isinstance(failure.value, UpstreamUnavailable) and failure.value.status == 503


def test_a_hostile_error_code_is_not_kept(fake_st, make_api):
    fake_st.fail_next(1, 400, code="x\nforged line " + "y" * 100)
    with pytest.raises(ApiError) as failure:
        make_api().devices.list()
    assert failure.value.code is None


@pytest.mark.parametrize("path", ["https://evil.example/devices", "//evil.example/devices", "devices",
                                  ".evil.example/devices", "@evil.example/devices", ""])
def test_anything_but_a_path_on_the_api_is_refused(fake_st, make_api, path):
    with pytest.raises(ApiError) as refused:
        make_api().request("GET", path)
    assert refused.value.reason == "absolute_url_refused"
    assert fake_st.calls == []


def test_a_path_with_control_characters_is_refused(fake_st, make_api):
    with pytest.raises(ApiError) as refused:
        make_api().request("GET", "/devices\r\nX-Injected: 1")
    assert refused.value.reason == "invalid_path" and fake_st.calls == []


def test_redirects_and_off_host_page_links_are_not_followed(fake_st, make_api):
    with LoopbackServer() as elsewhere:
        fake_st.route("GET", r"/devices/moved/status",
                      lambda call, match: Reply(302, headers={"Location": elsewhere.url + "/steal"}))
        fake_st.route("GET", r"/devices", lambda call, match: Reply(200, {
            "items": [{"deviceId": "one"}], "_links": {"next": {"href": elsewhere.url + "/devices?page=1"}}}))
        api = make_api()
        with pytest.raises(ApiError) as redirected:
            api.devices.get_status("moved")
        assert redirected.value.reason == "smartthings_error" and redirected.value.http_status == 302
        assert api.devices.list() == [{"deviceId": "one"}]
        assert elsewhere.calls == []


def test_a_slow_answer_is_cut_off_inside_the_deadline(fake_st, make_api):
    fake_st.route("GET", r"/devices/slow/status", lambda call, match: Reply(200, {}, delay=1.0))
    with pytest.raises(ApiError) as slow:
        make_api(deadline=Deadline.after(0.3)).devices.get_status("slow")
    assert slow.value.reason == "smartthings_unreachable" and slow.value.http_status is None


def test_no_budget_left_means_no_call(fake_st, make_api):
    with pytest.raises(ApiError) as late:
        make_api(deadline=Deadline.after(0.0)).devices.get_status("light")
    assert late.value.reason == "deadline_exceeded" and fake_st.calls == []


def test_nothing_listening_is_unreachable(make_api):
    from smartapp.api import SmartThingsApi
    from smartapp.smartthings import SmartThingsClient

    with LoopbackServer() as gone:
        url = gone.url
    api = SmartThingsApi(http=SmartThingsClient(api_url=url), installed_app_id="iapp-1", location_id="loc-1",
                         tokens=RecordingTokens(API_TOKEN), deadline=Deadline.after(3.0))
    with pytest.raises(ApiError) as unreachable:
        api.devices.get_status("light")
    assert unreachable.value.reason == "smartthings_unreachable"


def test_a_2xx_that_is_not_json_is_an_invalid_response(fake_st, make_api):
    fake_st.route("GET", r"/devices/odd/status", lambda call, match: Reply(200, "<html>hello</html>"))
    with pytest.raises(ApiError) as odd:
        make_api().devices.get_status("odd")
    assert odd.value.reason == "smartthings_invalid_response"


def test_no_token_or_response_body_reaches_an_exception_or_a_log_line(fake_st, make_api, smartapp_log, caplog):
    replacement = "tok-replacement-5b1d-canary"
    leak = f"echo of Bearer {API_TOKEN} and {replacement}"
    fake_st.route("GET", r"/devices/leaky/status", lambda call, match: Reply(500, {"error": {
        "code": "Boom", "message": leak}, "token": API_TOKEN}))
    fake_st.reject_token(API_TOKEN)
    api = make_api(tokens=RecordingTokens(API_TOKEN, replacement=replacement))
    failures = []
    fake_st.rate_limit_next(1, reset=1)
    for attempt in (lambda: api.devices.get_status("leaky"),                        # 429, then 401, then 500
                    lambda: api.request("GET", f"/devices?access_token={API_TOKEN}"),  # fine
                    lambda: api.request("GET", f"https://evil.example/?t={API_TOKEN}")):
        try:
            attempt()
        except ApiError as error:
            failures.append(error)
    api.subscriptions.subscribe_to_devices([f"d{n}" for n in range(41)], "switch", "switch", "switchHandler")
    assert [error.reason for error in failures] == ["smartthings_error", "absolute_url_refused"]
    # The calls that retried and the limit that was hit were logged, so the check below has lines to look at.
    assert {"smartthings_rate_limited", "smartthings_unauthorized", "subscription_limit"} <= set(smartapp_log.reasons())
    texts = [smartapp_log.raw(), caplog.text] + [f"{error} {error!r} {error.detail} {error.args}" for error in failures]
    for text in texts:
        assert API_TOKEN not in text and replacement not in text and "echo of" not in text
