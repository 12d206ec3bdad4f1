"""Prometheus metrics of the ingest stage."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("sigap_ingest_messages_total", "MQTT messages received", ["topic_kind"])
READINGS = Counter("sigap_ingest_readings_total", "Readings accepted and handed on")
REJECTED = Counter("sigap_ingest_rejected_total", "Messages or readings rejected", ["reason"])
BATCH_SIZE = Histogram(
    "sigap_ingest_batch_readings",
    "Readings per micro-batch",
    buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000, 50000),
)
INFLUX_WRITTEN = Counter("sigap_influx_written_readings_total", "Readings written to InfluxDB")
INFLUX_PENDING = Gauge("sigap_influx_pending_readings", "Readings waiting to be written")
INFLUX_WRITE_ERRORS = Counter("sigap_influx_write_errors_total", "Failed InfluxDB write attempts")
INFLUX_REFUSED_READINGS = Counter(
    "sigap_influx_refused_readings_total", "Readings InfluxDB refused as malformed (not retried)"
)
MQTT_CONNECTED = Gauge("sigap_mqtt_connected", "1 while ingest is connected to the broker")
