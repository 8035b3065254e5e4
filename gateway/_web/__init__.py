"""The daemon's HTTP server: metrics, health, the dashboard."""
