"""Who may publish and subscribe where: the ACLs behind every broker account Sigap manages.

One place for the topic policy, so that the dynamic-security implementation, the in-memory
one and the initial dynamic-security.json all enforce the same rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from paho.mqtt.client import topic_matches_sub

from contract import topics

# The dynamic security plugin's ACL types (mosquitto 2.0).
PUBLISH_SEND = "publishClientSend"  # the client publishes to the broker
PUBLISH_RECEIVE = "publishClientReceive"  # the broker delivers to the client
SUBSCRIBE = "subscribePattern"  # the subscription filter must fall under the ACL topic

SERVICE_ROLE = "sigap-service"
ADMIN_ROLE = "sigap-admin"
CONTROL_TOPICS = "$CONTROL/dynamic-security/#"

# Same shape as the device registry's ids (devices/schemas.py): ids travel in topics, so no
# wildcards, slashes or whitespace; a narrower check here would refuse registered devices.
ACCOUNT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class AccountKind(StrEnum):
    """What a broker account belongs to."""

    device = "device"
    gateway = "gateway"
    other = "other"  # the service and admin accounts, or anything created by hand


@dataclass(frozen=True, slots=True)
class AclRule:
    """One dynamic-security ACL entry."""

    acltype: str
    topic: str
    allow: bool = True

    def to_json(self) -> dict[str, str | bool]:
        """The entry as the plugin's JSON (commands and config file alike)."""
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow}


def check_id(account_id: str) -> str:
    """The id unchanged, or ValueError when it cannot be a topic segment and username."""
    if not ACCOUNT_ID_RE.match(account_id):
        raise ValueError(f"not a valid device or gateway id: {account_id!r}")
    return account_id


def role_name(kind: AccountKind, account_id: str) -> str:
    """The per-account role, e.g. `device:fire-001`."""
    return f"{kind.value}:{account_id}"


def kind_of(username: str, roles: tuple[str, ...]) -> AccountKind:
    """A Sigap-managed account holds exactly its own role; anything else is `other`."""
    for kind in (AccountKind.device, AccountKind.gateway):
        if role_name(kind, username) in roles:
            return kind
    return AccountKind.other


def other_kind(found: AccountKind, wanted: AccountKind) -> str:
    """Why an account of one kind is left alone by a call about another."""
    return f"is a {found.value} account, not a {wanted.value} account; left as it is"


def publish_topics(kind: AccountKind, account_id: str) -> tuple[str, ...]:
    """The topics a device or gateway may publish to (nothing else, and no subscriptions)."""
    if kind is AccountKind.device:
        return (topics.device_up(account_id), topics.device_status(account_id))
    if kind is AccountKind.gateway:
        return (topics.gateway_up(account_id), topics.gateway_status(account_id))
    raise ValueError(f"no publish topics for {kind}")


def account_acls(kind: AccountKind, account_id: str) -> tuple[AclRule, ...]:
    """The ACLs of a device's or gateway's own role."""
    return tuple(
        AclRule(PUBLISH_SEND, topic) for topic in publish_topics(kind, check_id(account_id))
    )


# Sigap's own service account (ingest, alert publisher): reads all Sigap and LoRaWAN
# network-server topics, writes only alerts and the readings one ingest worker forwards to
# another (ingest/partition.py). It may not publish device topics, so a leaked service
# password cannot pass for a device.
SERVICE_READ_TOPICS = (
    "sigap/#",
    "v3/#",  # The Things Stack v3: v3/{app}@{tenant}/devices/{dev}/up
    "application/#",  # ChirpStack v4: application/{app}/device/{eui}/event/up
)
SERVICE_ACLS: tuple[AclRule, ...] = (
    *(AclRule(SUBSCRIBE, topic) for topic in SERVICE_READ_TOPICS),
    # Several ingest workers subscribe as one share group ($share/{group}/{filter});
    # mosquitto's plugin checks such a subscription with its $share prefix.
    *(AclRule(SUBSCRIBE, f"$share/+/{topic}") for topic in SERVICE_READ_TOPICS),
    *(AclRule(PUBLISH_RECEIVE, topic) for topic in SERVICE_READ_TOPICS),
    AclRule(PUBLISH_SEND, topics.ALERTS),
    AclRule(PUBLISH_SEND, "sigap/internal/#"),
)

# Development and test only (the simulator, the demo, the test suite): publishes as any
# device, gateway or network server, and reads alerts. A production broker has no such
# account: there each device and gateway publishes with its own.
DEVELOPER_ROLE = "sigap-developer"
DEVELOPER_PUBLISH_TOPICS = (
    topics.DEVICE_UP,
    topics.DEVICE_STATUS,
    topics.GATEWAY_UP,
    topics.GATEWAY_STATUS,
    *topics.LORAWAN_UP,
)
DEVELOPER_ACLS: tuple[AclRule, ...] = (
    *(AclRule(PUBLISH_SEND, topic) for topic in DEVELOPER_PUBLISH_TOPICS),
    AclRule(SUBSCRIBE, topics.ALERTS),
    AclRule(PUBLISH_RECEIVE, topics.ALERTS),
)

# The provisioning admin talks to the plugin and nothing else.
ADMIN_ACLS: tuple[AclRule, ...] = (
    AclRule(PUBLISH_SEND, CONTROL_TOPICS),
    AclRule(PUBLISH_RECEIVE, CONTROL_TOPICS),
    AclRule(SUBSCRIBE, CONTROL_TOPICS),
)

# What the plugin does when no ACL matches: deny publishing and subscribing, let the
# broker deliver whatever a client was allowed to subscribe to.
DEFAULT_ACL_ACCESS: dict[str, bool] = {
    "publishClientSend": False,
    "publishClientReceive": True,
    "subscribe": False,
    "unsubscribe": True,
}


def allowed(acls: tuple[AclRule, ...], acltype: str, topic: str) -> bool:
    """The plugin's decision for one topic: the first matching ACL, else the default."""
    default_key = "subscribe" if acltype.startswith("subscribe") else acltype
    for rule in acls:
        if rule.acltype != acltype:
            continue
        if acltype == SUBSCRIBE:
            if _filter_within(topic, rule.topic):
                return rule.allow
        elif topic_matches_sub(rule.topic, topic):
            return rule.allow
    return DEFAULT_ACL_ACCESS.get(default_key, False)


def _filter_within(sub: str, rule: str) -> bool:
    """True when every topic the filter `sub` matches is matched by the ACL `rule`.

    A `+` or `#` in the filter is covered only by a wildcard in the rule; a `+` in the
    rule takes one literal level of the filter (a share group name).
    """
    sub_levels = sub.split("/")
    for i, level in enumerate(rule.split("/")):
        if level == "#":
            return True
        if i >= len(sub_levels):
            return False
        if level == "+":
            if sub_levels[i] == "#":
                return False
        elif level != sub_levels[i]:
            return False
    return len(sub_levels) == len(rule.split("/"))
