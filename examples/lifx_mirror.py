"""Mirror a SmartThings switch to LIFX lights through the user's linked LIFX account.

Run with SMARTAPP_OAUTH_PROVIDER=lifx (and its client id and secret): the first page then offers "Connect
LIFX", and the handler calls the LIFX HTTP API with the linked account's token, refreshed when due.
"""

import os
from urllib.parse import quote

from smartapp import Context, Page, SmartApp

LIFX_API = os.environ.get("LIFX_API_URL", "https://api.lifx.com/v1")
app = SmartApp("Mirror to LIFX", description="Your LIFX lights follow a SmartThings switch")


@app.page("mainPage")
def main_page(ctx: Context, page: Page) -> None:
    section = page.section("mirror")
    section.device("switch", capability="switch", required=True)
    section.text("selector", default="all")


@app.installed
@app.updated
def subscribe(ctx: Context) -> None:
    ctx.api.subscriptions.subscribe_to_devices(ctx.config.devices("switch"), "switch", "switch", "switchChanged")


@app.subscription("switchChanged")
def mirror(ctx: Context, event: dict) -> None:
    if ctx.linked_account is not None:
        url = f"{LIFX_API}/lights/{quote(ctx.config.string('selector', 'all'), safe=':')}/state"
        ctx.linked_account.session.put(url, json={"power": event["value"]}).raise_for_status()
