"""One module per lifecycle; each exposes `handle(lifecycle, services, context) -> inner response data`."""
