"""The bundled SmartApp, "lights follow sensors": a contact sensor opens, the lights go on; N minutes after it
closes, they go off. Written only with the public API: copy it to start your own."""

from smartapp import Context, Page, SmartApp

app = SmartApp("Lights follow sensors", description="Turns lights on when a door opens, off when it closes")


@app.page("mainPage")
def main_page(ctx: Context, page: Page) -> None:
    section = page.section("devices")
    section.device("sensors", capability="contactSensor", multiple=True, required=True)
    section.device("lights", capability="switch", multiple=True, required=True, permissions="rx")
    section.number("offDelayMinutes", default=5, min=0)


@app.installed
@app.updated
def subscribe(ctx: Context) -> None:
    ctx.api.subscriptions.subscribe_to_devices(ctx.config.devices("sensors"), "contactSensor", "contact",
                                               "contactHandler")


@app.subscription("contactHandler")
def contact_changed(ctx: Context, event: dict) -> None:
    if event.get("value") == "open":
        ctx.api.devices.send_command(ctx.config.devices("lights"), "switch", "on")
        ctx.api.schedules.delete("lightsOff")
    elif event.get("value") == "closed" and (delay := ctx.config.number("offDelayMinutes", 5)) > 0:
        ctx.api.schedules.run_in("lightsOff", delay * 60)


@app.schedule("lightsOff")
def lights_off(ctx: Context, event: dict) -> None:
    ctx.api.devices.send_command(ctx.config.devices("lights"), "switch", "off")
