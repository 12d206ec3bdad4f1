"""Dispatch end to end: a fire from MQTT readings to a webhook receiver, the SSE stream, the
MQTT alert topic and CAP; a restart of `sigap up` between the raise and the ack loses
nothing and duplicates nothing."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

from dispatch.webhooks import verify
from sigap import devstack
from tests.conftest import reference_data
from tests.integration.conftest import SigapProcess, developer_client, http, start_sigap, stop_sigap
from tests.integration.test_end_to_end import eventually, publish, register

pytestmark = pytest.mark.integration

SECRET = "kotim-fire-console-secret"


class Receiver:
    """A real HTTP server on 127.0.0.1 recording every webhook POST."""

    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                calls.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sigap"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, want: int, timeout: float = 15.0) -> list[tuple[dict[str, str], bytes]]:
        """Wait for at least `want` deliveries."""
        got: list[tuple[dict[str, str], bytes]] = []
        deadline = time.monotonic() + timeout
        while len(got) < want:
            got.append(self.calls.get(timeout=max(deadline - time.monotonic(), 0.01)))
        return got


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def sse_after(
    api: str, last_event_id: int, want: int, timeout: float = 10.0
) -> list[tuple[str, int, dict[str, Any]]]:
    """Connect with Last-Event-ID and read `want` events (event name, id, alert)."""
    out: list[tuple[str, int, dict[str, Any]]] = []
    event, ident = "", 0
    with http.stream(
        "GET",
        f"{api}/api/v1/alerts/stream",
        timeout=timeout,
        headers={"Last-Event-ID": str(last_event_id)},
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("id:"):
                ident = int(line.split(":", 1)[1])
            elif line.startswith("data:"):
                out.append((event, ident, orjson.loads(line.split(":", 1)[1])))
                if len(out) >= want:
                    return out
    return out


def test_fire_to_webhook_sse_mqtt_and_cap_across_a_restart(
    mosquitto: devstack.Service,
    influxd: devstack.Service,
    publisher: mqtt.Client,
    receiver: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data_dir = tmp_path_factory.mktemp("dispatch")
    env = {
        "SIGAP_DISPATCH_WEBHOOK_POLL_S": "0.2",
        "SIGAP_MQTT_CLIENT_ID": "sigap-dispatch-test",
        # The receiver is on loopback, where webhooks go only when allowlisted.
        "SIGAP_DISPATCH_WEBHOOK_ALLOW_NETS": "127.0.0.1/32",
    }
    proc: SigapProcess = start_sigap(mosquitto, influxd, data_dir, wait_ready=True, **env)
    try:
        api = proc.api
        station = {
            "id": "damkar-baamang",
            "kind": "fire_station",
            "name": "Pos Damkar Baamang",
            "lat": -2.505,
            "lon": 112.955,
            "district": "Baamang",
        }
        assert http.post(f"{api}/api/v1/stations", json=station).status_code == 201
        hook = http.post(
            f"{api}/api/v1/webhooks",
            json={"url": receiver.url, "secret": SECRET, "categories": ["fire"]},
        )
        assert hook.status_code == 201, hook.text

        alerts_seen: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        watcher = developer_client(mosquitto.port)
        watcher.on_message = lambda _c, _u, message: alerts_seen.put(message)
        watcher.connect("127.0.0.1", mosquitto.port)
        watcher.subscribe("sigap/alerts/fire/#", qos=1)
        watcher.loop_start()

        device = register(api, zone="pasar-baamang", lat=-2.506, lon=112.956)
        topic = f"sigap/devices/{device}/up"
        ts = int(time.time() * 1000)
        publish(publisher, topic, {"ts": ts, "seq": 1, "temp_c": 66.0})
        publish(publisher, topic, {"ts": ts + 10_000, "seq": 2, "temp_c": 71.0})

        # The webhook receiver gets the raise and the verification, signed.
        (raised, verified) = receiver.events(2)
        for headers, body in (raised, verified):
            assert verify(SECRET, body, headers["x-sigap-signature"])
            assert headers["idempotency-key"]
        change = json.loads(raised[1])
        alert_id = change["alert"]["id"]
        assert change["type"] == "raised" and change["alert"]["kind"] == "fire.pre_alarm"
        assert change["alert"]["proposed_stations"] == ["damkar-baamang"]
        assert json.loads(verified[1])["alert"]["kind"] == "fire.alarm"

        # MQTT consoles get the same changes on the alert topic.
        message = alerts_seen.get(timeout=10)
        assert message.topic == f"sigap/alerts/fire/{device}"
        assert orjson.loads(message.payload)["alert"]["id"] == alert_id

        # CAP 1.2, valid against the OASIS schema.
        import xmlschema

        schema = xmlschema.XMLSchema(str(reference_data("cap-1.2", "CAP-v1.2.xsd")))
        cap = http.get(f"{api}/api/v1/alerts/{alert_id}/cap")
        assert cap.status_code == 200 and cap.headers["content-type"] == "application/cap+xml"
        schema.validate(cap.text)
        assert "<msgType>Update</msgType>" in cap.text and "<references>" in cap.text
        feed = http.get(f"{api}/api/v1/alerts/cap")
        assert feed.status_code == 200 and f"sigap-alert-{alert_id}-" in feed.text

        # Everything so far, as an SSE console resuming from the start sees it.
        before = sse_after(api, 0, 2)
        assert [(e, a["kind"]) for e, _, a in before] == [
            ("alert.raised", "fire.pre_alarm"),
            ("alert.updated", "fire.alarm"),
        ]
        last_id = before[-1][1]
    finally:
        stop_sigap(proc)

    # Restart between the raise and the acknowledgement.
    proc = start_sigap(mosquitto, influxd, data_dir, wait_ready=True, **env)
    try:
        api = proc.api
        # Still hot after the restart: the same alert, not a second one.
        publish(publisher, topic, {"ts": ts + 20_000, "seq": 3, "temp_c": 74.0})
        eventually(
            lambda: http.get(f"{api}/api/v1/devices/{device}").json()["last_seen_at"],
            what="the reading after the restart",
        )
        fire_alerts = http.get(f"{api}/api/v1/alerts", params={"device_id": device}).json()
        assert [a["id"] for a in fire_alerts] == [alert_id]

        ack = http.post(f"{api}/api/v1/alerts/{alert_id}/ack", json={"by": "operator Sri"})
        assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
        sent = http.post(f"{api}/api/v1/alerts/{alert_id}/dispatch", json={"by": "operator Sri"})
        assert sent.json()["station_id"] == "damkar-baamang"

        # A console that was connected before the restart resumes and misses nothing.
        resumed = sse_after(api, last_id, 2)
        assert [e for e, _, _ in resumed] == ["alert.acknowledged", "alert.dispatched"]
        assert all(i > last_id for _, i, _ in resumed)

        # The webhook receiver gets them too, each event once per idempotency key.
        later = receiver.events(2)
        assert [json.loads(body)["type"] for _, body in later] == ["acknowledged", "dispatched"]
        keys = [headers["idempotency-key"] for headers, _ in (raised, verified, *later)]
        assert len(set(keys)) == 4
        trail = http.get(f"{api}/api/v1/alerts/{alert_id}/actions").json()
        assert [(a["action"], a["by"]) for a in trail] == [
            ("ack", "operator Sri"),
            ("dispatch", "operator Sri"),
        ]
    finally:
        stop_sigap(proc)
        watcher.loop_stop()
        watcher.disconnect()


def test_unacknowledged_fire_escalates_to_the_next_station(
    mosquitto: devstack.Service,
    influxd: devstack.Service,
    publisher: mqtt.Client,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    proc = start_sigap(
        mosquitto,
        influxd,
        tmp_path_factory.mktemp("escalation"),
        SIGAP_DISPATCH_ESCALATE_AFTER_S="1",
        SIGAP_DISPATCH_ESCALATION_CHECK_S="0.2",
    )
    try:
        api = proc.api
        for station_id, lat in (("damkar-near", -2.507), ("damkar-far", -2.53)):
            body = {"id": station_id, "kind": "fire_station", "lat": lat, "lon": 112.956}
            assert http.post(f"{api}/api/v1/stations", json=body).status_code == 201
        device = register(api, lat=-2.506, lon=112.956)
        publish(
            publisher, f"sigap/devices/{device}/up", {"temp_c": 90.0, "smoke_obs_pct_m": 20.0}
        )  # heat and smoke: confirmed
        alert = eventually(
            lambda: http.get(f"{api}/api/v1/alerts", params={"device_id": device}).json(),
            what="the fire alert",
        )[0]
        assert alert["proposed_stations"] == ["damkar-near", "damkar-far"]
        trail = eventually(
            lambda: [
                a
                for a in http.get(f"{api}/api/v1/alerts/{alert['id']}/actions").json()
                if a["action"] == "escalate"
            ],
            what="an escalation of the unacknowledged alert",
        )
        assert trail[0]["by"] == "sigap" and trail[0]["details"]["to"] == "damkar-far"
        escalated = http.get(f"{api}/api/v1/alerts/{alert['id']}").json()
        assert escalated["escalation_level"] >= 1 and escalated["status"] == "open"
    finally:
        stop_sigap(proc)
