"""The user picks switches; the app subscribes to them and logs each change on the request's line (the core's
tests and the benchmarks serve this app)."""

from smartapp import Context, Page, SmartApp

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
    ctx.annotate(switch=event.get("deviceId"), value=event.get("value"))
