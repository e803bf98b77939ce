"""The webhook: its core answers a lifecycle request without WSGI; the mount owns its paths in front of Flask."""

from smartapp.webhook.core import CLAIM_LEASE_SECONDS, REQUEST_BUDGET_SECONDS, Webhook
from smartapp.webhook.wsgi import WebhookMount

__all__ = ["CLAIM_LEASE_SECONDS", "REQUEST_BUDGET_SECONDS", "Webhook", "WebhookMount"]
