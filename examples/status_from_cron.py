"""From a cron job: read a switch's status and switch it off if it is on.

    python -m examples.status_from_cron INSTALLED_APP_ID DEVICE_ID
"""

import sys

import smartapp

installed_app_id, device_id = sys.argv[1:3]
with smartapp.installation(installed_app_id) as ctx:
    status = ctx.api.devices.get_capability_status(device_id, "main", "switch")
    if status["switch"]["value"] == "on":
        ctx.api.devices.send_command(device_id, "switch", "off")
