"""One module per lifecycle; each exposes `handle(lifecycle, services, request) -> inner response data`."""
