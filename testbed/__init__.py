"""Real local services that the tests and the benchmarks both start: redis-server (single, Cluster,
Sentinel), a key server for SmartThings' certificates, the service under gunicorn, and SmartThings'
request signing. Not installed with the package; tests/ and bench/ import it from the checkout."""
