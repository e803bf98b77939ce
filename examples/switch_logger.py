"""The user picks switches; the app subscribes to them and logs one line per change (the core's tests and the
benchmarks serve this app)."""

import logging

from smartapp import Context, Page, SmartApp

log = logging.getLogger("smartapp.switch_logger")

app = SmartApp("SmartApp", description="Watches the switches you choose")


@app.page("mainPage")
def main_page(ctx: Context, page: Page) -> None:
    page.name = "Choose devices"
    page.section("devices", name="Devices").device(
        "switches", name="Which switches?", description="Tap to choose the switches this app watches",
        capability="switch", multiple=True, permissions="rx")


@app.installed
@app.updated
def subscribe(ctx: Context) -> None:
    ctx.api.subscriptions.subscribe_to_devices(ctx.config.devices("switches"), "switch", "switch", "switchHandler")


@app.subscription("switchHandler")
def switch_changed(ctx: Context, event: dict) -> None:
    value = event.get("value")
    log.info("switch_changed", extra={"installedAppId": ctx.installed_app_id, "deviceId": event.get("deviceId"),
                                      "value": value if isinstance(value, str) else None})
