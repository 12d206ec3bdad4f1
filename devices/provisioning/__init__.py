"""MQTT accounts for devices and gateways: issued, re-keyed and revoked on a running broker."""

from devices.provisioning.accounts import (
    Account,
    AccountConflictError,
    AccountNotFoundError,
    BrokerAccounts,
    BrokerCommandError,
    BrokerUnavailableError,
    Credentials,
    ProvisioningError,
    new_password,
)
from devices.provisioning.dynsec import DynsecAccounts
from devices.provisioning.dynsec_config import hash_password, initial_config, write_initial_config
from devices.provisioning.memory import InMemoryAccounts
from devices.provisioning.policy import SERVICE_ROLE, AccountKind, publish_topics

__all__ = [
    "SERVICE_ROLE",
    "Account",
    "AccountConflictError",
    "AccountKind",
    "AccountNotFoundError",
    "BrokerAccounts",
    "BrokerCommandError",
    "BrokerUnavailableError",
    "Credentials",
    "DynsecAccounts",
    "InMemoryAccounts",
    "ProvisioningError",
    "hash_password",
    "initial_config",
    "new_password",
    "publish_topics",
    "write_initial_config",
]
