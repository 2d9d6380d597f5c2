"""Configuration: the `plano_config.yaml` loader and the dataclasses every service reads."""
from switchyard.common.config.loader import (
    ConfigError,
    format_listener_table,
    format_model_table,
    load_config,
    match_providers,
    parse_config,
)
from switchyard.common.config.model import (
    Alias,
    Config,
    Listener,
    ProviderEntry,
    ServiceAddresses,
    StateStorage,
    WeightedTarget,
)

__all__ = ["Alias", "Config", "ConfigError", "Listener", "ProviderEntry", "ServiceAddresses",
           "StateStorage", "WeightedTarget", "format_listener_table", "format_model_table",
           "load_config", "match_providers", "parse_config"]
