"""Configuration: ``gateway.yaml`` and one YAML file per adapter instance."""

from gateway._config._load import DEFAULT_CONFIG, GatewayConfig, InstanceConfig, load_config
from gateway._config._schema import GatewaySettings, InstanceSettings

__all__ = ["DEFAULT_CONFIG", "GatewayConfig", "GatewaySettings", "InstanceConfig", "InstanceSettings", "load_config"]
