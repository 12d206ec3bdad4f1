"""The dynamic security plugin's config file: password hashes and the initial accounts.

mosquitto 2.0 stores each client's password as PBKDF2-HMAC-SHA512 with a 12-byte salt,
both base64, and the iteration count (the format `mosquitto_ctrl dynsec init` writes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from devices.provisioning.policy import (
    ADMIN_ACLS,
    ADMIN_ROLE,
    DEFAULT_ACL_ACCESS,
    DEVELOPER_ACLS,
    DEVELOPER_ROLE,
    SERVICE_ACLS,
    SERVICE_ROLE,
    AclRule,
)

SALT_BYTES = 12  # mosquitto 2.0's SALT_LEN; the plugin refuses other lengths
# The count mosquitto 2.0 itself uses for clients created through createClient and by
# `mosquitto_ctrl dynsec init`; the file is the secret to protect, not the work factor.
ITERATIONS = 101


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS
) -> dict[str, str | int]:
    """The `password`, `salt` and `iterations` fields of a dynsec client entry."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return {"password": _b64(digest), "salt": _b64(salt), "iterations": iterations}


def verify_password(password: str, entry: dict[str, Any]) -> bool:
    """True when the password matches a dynsec client entry's hash."""
    try:
        salt = base64.b64decode(entry["salt"])
        expected = base64.b64decode(entry["password"])
        iterations = int(entry["iterations"])
    except (KeyError, ValueError, TypeError):
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def _role(name: str, acls: tuple[AclRule, ...]) -> dict[str, Any]:
    return {"rolename": name, "acls": [rule.to_json() for rule in acls]}


def initial_config(
    *,
    admin_username: str,
    admin_password: str,
    service_username: str,
    service_password: str,
    developer: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A dynamic-security.json with the provisioning admin and Sigap's service account
    (and, for development and tests only, a developer account: see DEVELOPER_ROLE)."""
    names = [admin_username, service_username] + ([developer[0]] if developer else [])
    if len(set(names)) != len(names):
        raise ValueError("the admin, service and developer accounts need different usernames")
    extra = []
    if developer is not None:
        extra.append(
            {
                "username": developer[0],
                "textname": "Development and tests: publishes as any device",
                **hash_password(developer[1]),
                "roles": [{"rolename": DEVELOPER_ROLE}],
            }
        )
    return {
        "clients": [
            {
                "username": admin_username,
                "textname": "Sigap provisioning admin",
                **hash_password(admin_password),
                "roles": [{"rolename": ADMIN_ROLE}],
            },
            {
                "username": service_username,
                "textname": "Sigap service",
                **hash_password(service_password),
                "roles": [{"rolename": SERVICE_ROLE}],
            },
            *extra,
        ],
        "groups": [],
        "roles": [
            _role(ADMIN_ROLE, ADMIN_ACLS),
            _role(SERVICE_ROLE, SERVICE_ACLS),
            *([_role(DEVELOPER_ROLE, DEVELOPER_ACLS)] if developer else []),
        ],
        "defaultACLAccess": dict(DEFAULT_ACL_ACCESS),
    }


def write_initial_config(
    path: Path,
    *,
    admin_username: str,
    admin_password: str,
    service_username: str,
    service_password: str,
    developer: tuple[str, str] | None = None,
) -> None:
    """Write initial_config() to path, readable by its owner only (it holds password hashes)."""
    config = initial_config(
        admin_username=admin_username,
        admin_password=admin_password,
        service_username=service_username,
        service_password=service_password,
        developer=developer,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(config, file, indent=2)
    tmp.replace(path)  # the broker never reads a half-written file
