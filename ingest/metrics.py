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
UNACKED = Gauge(
    "sigap_ingest_unacked_messages",
    "QoS 1 messages received but not yet acknowledged (their readings are not durable yet)",
)
QUEUED = Gauge(
    "sigap_ingest_queued_messages",
    "Messages received from the broker and not yet decoded (at the last flush)",
)
QUEUE_OVERFLOW = Counter(
    "sigap_ingest_queue_overflow_total",
    "Messages the MQTT client dropped because ingest's incoming queue was full",
    ["qos"],
)
STAGED = Gauge(
    "sigap_ingest_staged_readings", "Decoded readings left for the next flush (at the last one)"
)
LAG = Histogram(
    "sigap_ingest_lag_seconds",
    "Per flush: how long its oldest reading waited between arrival and the rules",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SPOOL_BYTES = Gauge("sigap_spool_bytes", "Bytes of readings spooled to disk for InfluxDB")
SPOOL_READINGS = Gauge("sigap_spool_readings", "Readings spooled to disk for InfluxDB")
SPOOLED = Counter("sigap_spooled_readings_total", "Readings ever written to the disk spool")
SPOOL_ERRORS = Counter("sigap_spool_errors_total", "Failed writes to the disk spool")
ALERT_LATENCY = Histogram(
    "sigap_alert_latency_seconds",
    "From a reading's arrival at ingest to its alert events being committed",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ALERT_COMMIT = Histogram(
    "sigap_alert_commit_seconds",
    "Committing one round of alert events in SQL (ingest waits for it under its flush lock)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LORAWAN_DUPLICATES = Counter(
    "sigap_ingest_lorawan_duplicates_total",
    "LoRaWAN uplinks dropped because the same uplink was already taken (several gateways)",
)
# Several ingest workers (ingest/partition.py).
FORWARDED = Counter(
    "sigap_ingest_forwarded_readings_total",
    "Readings this worker received and sent on to the worker that owns their device",
    ["to_worker"],
)
FORWARDED_IN = Counter(
    "sigap_ingest_forwarded_in_readings_total",
    "Readings other workers sent to this one because it owns their device",
)
EVALUATED = Counter(
    "sigap_rules_evaluated_readings_total", "Readings handed to this process's rule engine"
)
