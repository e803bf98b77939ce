"""SmartApps the core tests run against, written with the public API like a developer would."""
