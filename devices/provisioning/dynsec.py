"""BrokerAccounts over mosquitto's dynamic security plugin (the $CONTROL topic API).

Commands are JSON published to `$CONTROL/dynamic-security/v1`; the plugin answers on
`.../response`, echoing each command's `correlationData`, which is how concurrent calls
find their answers. The plugin applies every change at once and saves its config file
itself: no broker restart or reload. Deleting, disabling or re-keying a client makes the
broker close that username's open sessions (verified against mosquitto 2.0.11).

Why one role per device (`device:{id}`) rather than one shared role with `%u` patterns:
mosquitto 2.0's plugin matches publishClientSend ACLs literally (no `%u`/`%c` substitution;
a `sigap/devices/%u/up` ACL denies the device's own topic), so the only way to confine a
device to its own topics is a role naming them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from types import TracebackType
from typing import Any, Self

import aiomqtt
import orjson

from devices.provisioning.accounts import (
    Account,
    AccountConflictError,
    AccountNotFoundError,
    BrokerCommandError,
    BrokerUnavailableError,
    Credentials,
    new_password,
)
from devices.provisioning.policy import (
    SERVICE_ACLS,
    SERVICE_ROLE,
    AccountKind,
    AclRule,
    account_acls,
    check_id,
    kind_of,
    other_kind,
    role_name,
)

log = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"

# The plugin's error strings (mosquitto 2.0) that callers turn into typed errors.
CLIENT_EXISTS = "Client already exists"
CLIENT_NOT_FOUND = "Client not found"
ROLE_EXISTS = "Role already exists"
ROLE_NOT_FOUND = "Role not found"

Command = dict[str, Any]


class _ConnectionLostError(BrokerUnavailableError):
    """The admin connection went away while a call waited (the call may be repeated)."""


class DynsecAccounts:
    """BrokerAccounts on a live mosquitto through its dynamic security plugin.

    Use as `async with DynsecAccounts(...) as accounts:` (e.g. from the API's lifespan).
    The admin connection is opened on entry and, if the broker drops it, again on the
    next call; a call that cannot reach the broker raises BrokerUnavailableError.
    """

    def __init__(
        self,
        host: str,
        port: int,
        admin_username: str,
        admin_password: str,
        *,
        service_username: str | None = None,
        timeout_s: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._admin = (admin_username, admin_password)
        # Accounts Sigap itself logs in with: never re-keyed or deleted through this API.
        self._reserved = frozenset(n for n in (admin_username, service_username) if n)
        self._timeout_s = timeout_s
        self._tls_context = tls_context
        # A fresh client id per instance: two API processes with one id would kick each other.
        self.client_id = f"sigap-provisioning-{uuid.uuid4().hex[:12]}"
        self._client: aiomqtt.Client | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Command]] = {}
        self._connect_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        await self._connected()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def connected(self) -> bool:
        """True while the admin connection is up (a call reconnects when it is not)."""
        return self._reader is not None and not self._reader.done()

    async def aclose(self) -> None:
        """Close the admin connection; pending calls fail with BrokerUnavailableError."""
        async with self._connect_lock:
            await self._teardown()

    # -- BrokerAccounts ------------------------------------------------------------------

    async def ensure_roles(self) -> None:
        """Create sigap-service, or reset its ACLs to the current policy."""
        await self._put_role(SERVICE_ROLE, SERVICE_ACLS, "Sigap service: reads all, writes alerts")

    async def provision_device(self, device_id: str) -> Credentials:
        """Create the device's account, or give an existing one a new password (and enable it)."""
        return await self._provision(AccountKind.device, device_id)

    async def provision_gateway(self, gateway_id: str) -> Credentials:
        """Create the gateway's account, or give an existing one a new password (and enable it)."""
        return await self._provision(AccountKind.gateway, gateway_id)

    async def rotate_password(self, username: str) -> Credentials:
        """A new password for a device or gateway account; sessions on the old one are closed."""
        account = await self._managed(username)
        password = new_password()
        await self._call(
            {"command": "setClientPassword", "username": username, "password": password}
        )
        return Credentials(username, password, account.kind)

    async def set_enabled(self, username: str, enabled: bool) -> Account:
        """Suspend (closing its sessions) or resume a device or gateway account."""
        account = await self._managed(username)
        command = "enableClient" if enabled else "disableClient"
        await self._call({"command": command, "username": username})
        return Account(username, account.kind, enabled, account.roles)

    async def revoke(self, username: str, kind: AccountKind) -> bool:
        """Delete the account if it is one of this kind, closing its sessions; False if none."""
        try:
            account = await self._managed(username)
        except AccountNotFoundError:
            return False
        if account.kind is not kind:
            raise AccountConflictError(username, other_kind(account.kind, kind))
        # Deleting the client is what closes its sessions; then drop its own role, which
        # nothing else holds (a leftover role would only be clutter, not access).
        await self._call(
            {"command": "deleteClient", "username": username}, tolerate=(CLIENT_NOT_FOUND,)
        )
        await self._call(
            {"command": "deleteRole", "rolename": role_name(account.kind, username)},
            tolerate=(ROLE_NOT_FOUND,),
        )
        return True

    async def get(self, username: str) -> Account | None:
        """The account, or None."""
        response = await self._call(
            {"command": "getClient", "username": username}, tolerate=(CLIENT_NOT_FOUND,)
        )
        if response.get("error") == CLIENT_NOT_FOUND:
            return None
        return _account(response.get("data", {}).get("client", {}))

    async def list_accounts(self, kind: AccountKind | None = None) -> list[Account]:
        """All accounts (of one kind), sorted by username."""
        response = await self._call(
            {"command": "listClients", "verbose": True, "count": -1, "offset": 0}
        )
        clients = response.get("data", {}).get("clients", [])
        accounts = sorted(
            (_account(client) for client in clients if isinstance(client, dict)),
            key=lambda account: account.username,
        )
        return [a for a in accounts if kind is None or a.kind is kind]

    # -- account logic -------------------------------------------------------------------

    async def _provision(self, kind: AccountKind, account_id: str) -> Credentials:
        check_id(account_id)
        if account_id in self._reserved:
            raise AccountConflictError(account_id, "reserved for Sigap itself")
        role = role_name(kind, account_id)
        existing = await self.get(account_id)
        if existing is not None and role not in existing.roles:
            # Never re-key an account we did not create as this device (e.g. a person's).
            raise AccountConflictError(account_id, f"exists as a {existing.kind} account")
        await self._put_role(role, account_acls(kind, account_id), f"Sigap {kind} {account_id}")
        password = new_password()
        if existing is None:
            response = await self._call(
                {
                    "command": "createClient",
                    "username": account_id,
                    "password": password,
                    "textname": f"Sigap {kind} {account_id}",
                    "roles": [{"rolename": role}],
                },
                tolerate=(CLIENT_EXISTS,),
            )
            if response.get("error") != CLIENT_EXISTS:
                return Credentials(account_id, password, kind)
            # Created meanwhile by a concurrent call: re-key it below like any existing one.
        await self._call(
            {"command": "setClientPassword", "username": account_id, "password": password}
        )
        await self._call({"command": "enableClient", "username": account_id})
        return Credentials(account_id, password, kind)

    async def _managed(self, username: str) -> Account:
        if username in self._reserved:
            raise AccountConflictError(username, "reserved for Sigap itself")
        account = await self.get(username)
        if account is None:
            raise AccountNotFoundError(username)
        if account.kind is AccountKind.other:
            raise AccountConflictError(username, "not a device or gateway account")
        return account

    async def _put_role(self, rolename: str, acls: tuple[AclRule, ...], text: str) -> None:
        rules = [rule.to_json() for rule in acls]
        response = await self._call(
            {"command": "createRole", "rolename": rolename, "textname": text, "acls": rules},
            tolerate=(ROLE_EXISTS,),
        )
        if response.get("error") == ROLE_EXISTS:
            # modifyRole with `acls` replaces the whole list: the role ends up as the policy says.
            await self._call({"command": "modifyRole", "rolename": rolename, "acls": rules})

    # -- the $CONTROL request/response channel --------------------------------------------

    async def _call(self, command: Command, *, tolerate: tuple[str, ...] = ()) -> Command:
        """Send one command and return its response; errors not in `tolerate` raise."""
        response = await self._send([command])
        error = response[0].get("error")
        if error is not None and error not in tolerate:
            name = str(command["command"])
            if error == CLIENT_NOT_FOUND and "username" in command:
                raise AccountNotFoundError(str(command["username"]))
            raise BrokerCommandError(name, str(error))
        return response[0]

    async def _send(self, commands: list[Command]) -> list[Command]:
        # Every command Sigap sends is safe to repeat (creates tolerate "exists", the rest
        # set a state), so a connection lost mid-call is retried once on a new connection.
        try:
            return await self._send_once(commands)
        except _ConnectionLostError as exc:
            log.info("dynamic security: %s; retrying on a new connection", exc.reason)
            # The reader may not have noticed the drop yet: close this connection
            # ourselves, so that the retry really opens a new one.
            async with self._connect_lock:
                await self._teardown()
            return await self._send_once(commands)

    async def _send_once(self, commands: list[Command]) -> list[Command]:
        client = await self._connected()
        loop = asyncio.get_running_loop()
        tagged: list[Command] = []
        futures: list[asyncio.Future[Command]] = []
        for command in commands:
            correlation = uuid.uuid4().hex
            future: asyncio.Future[Command] = loop.create_future()
            self._pending[correlation] = future
            futures.append(future)
            tagged.append(command | {"correlationData": correlation})
        try:
            await client.publish(CONTROL_TOPIC, orjson.dumps({"commands": tagged}), qos=1)
            async with asyncio.timeout(self._timeout_s):
                return list(await asyncio.gather(*futures))
        except TimeoutError:
            raise BrokerUnavailableError(
                f"no answer on {RESPONSE_TOPIC} in {self._timeout_s:g} s "
                "(is the dynamic security plugin loaded, and may this admin use $CONTROL?)"
            ) from None
        except aiomqtt.MqttError as exc:
            raise _ConnectionLostError(str(exc)) from exc
        finally:
            for command in tagged:
                self._pending.pop(command["correlationData"], None)
            for future in futures:
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved: no "never retrieved" warnings

    async def _connected(self) -> aiomqtt.Client:
        async with self._connect_lock:
            if self._client is not None and self.connected:
                return self._client
            await self._teardown()
            stack = contextlib.AsyncExitStack()
            client = aiomqtt.Client(
                self.host,
                self.port,
                username=self._admin[0],
                password=self._admin[1],
                identifier=self.client_id,
                tls_context=self._tls_context,
                timeout=self._timeout_s,
            )
            try:
                await stack.enter_async_context(client)
                await client.subscribe(RESPONSE_TOPIC, qos=1)
            except aiomqtt.MqttError as exc:
                with contextlib.suppress(aiomqtt.MqttError):
                    await stack.aclose()
                raise BrokerUnavailableError(
                    f"admin connection to {self.host}:{self.port} failed: {exc}"
                ) from exc
            self._client, self._stack = client, stack
            self._reader = asyncio.create_task(self._read(client), name="dynsec-responses")
            return client

    async def _read(self, client: aiomqtt.Client) -> None:
        reason = "admin connection closed"
        try:
            async for message in client.messages:
                self._dispatch(message.payload)
        except aiomqtt.MqttError as exc:
            reason = f"admin connection lost: {exc}"
            log.warning("dynamic security %s", reason)
        finally:
            self._fail_pending(reason)

    def _dispatch(self, payload: Any) -> None:
        if not isinstance(payload, bytes | bytearray | str):
            return
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("dynamic security: unreadable response %r", payload[:200])
            return
        for response in body.get("responses", []) if isinstance(body, dict) else []:
            if not isinstance(response, dict):
                continue
            future = self._pending.get(str(response.get("correlationData")))
            if future is not None and not future.done():
                future.set_result(response)

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(_ConnectionLostError(reason))

    async def _teardown(self) -> None:
        reader, stack = self._reader, self._stack
        self._client = self._stack = self._reader = None
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if stack is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await stack.aclose()
        self._fail_pending("admin connection closed")


def _account(client: dict[str, Any]) -> Account:
    """An Account from a getClient / verbose listClients entry."""
    username = str(client.get("username", ""))
    roles = tuple(
        str(role["rolename"])
        for role in client.get("roles", [])
        if isinstance(role, dict) and "rolename" in role
    )
    return Account(username, kind_of(username, roles), not client.get("disabled", False), roles)
