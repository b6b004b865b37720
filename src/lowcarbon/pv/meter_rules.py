"""PV rules plugged into metering ingest (placeholder replaced below by the PV ingest profile)."""
