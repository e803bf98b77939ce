"""Every day at a time the user picks, switch off the switches they chose."""

from smartapp import Context, Page, SmartApp

app = SmartApp("Daily switch-off", description="Switches off the switches you choose at a time you choose")


@app.page("mainPage")
def main_page(ctx: Context, page: Page) -> None:
    section = page.section("schedule")
    section.device("switches", capability="switch", multiple=True, required=True, permissions="rx")
    section.time("offAt", required=True)


@app.installed
@app.updated
def schedule(ctx: Context) -> None:
    ctx.api.schedules.run_daily("switchOff", ctx.config.time("offAt"))


@app.schedule("switchOff")
def switch_off(ctx: Context, event: dict) -> None:
    ctx.api.devices.send_command(ctx.config.devices("switches"), "switch", "off")
