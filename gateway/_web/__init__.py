"""The daemon's HTTP side: metrics, health, the dashboard."""
