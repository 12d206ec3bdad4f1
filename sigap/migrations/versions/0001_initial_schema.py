"""Initial schema: every stage's tables, as the start-up create_all used to make them.

Revision ID: 0001
Revises: nothing (the first revision)
Create Date: 2026-11-27 19:46:48.752951
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=100), server_default="", nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("address", sa.String(length=300), server_default="", nullable=False),
        sa.Column("district", sa.String(length=100), nullable=False),
        sa.Column("zone", sa.String(length=100), nullable=True),
        sa.Column("gateway_id", sa.String(length=64), nullable=True),
        sa.Column("reporting_interval_s", sa.Float(), nullable=True),
        sa.Column("install_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("depth_mm", sa.Float(), nullable=True),
        sa.Column("sensor_offsets", sa.JSON(), nullable=True),
        sa.Column("rule_class", sa.String(length=64), nullable=True),
        sa.Column("thresholds", sa.JSON(), nullable=True),
        sa.Column("network_server", sa.String(length=16), nullable=True),
        sa.Column("ns_device_id", sa.String(length=64), nullable=True),
        sa.Column("field_map", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("network_server", "ns_device_id", name="uq_devices_ns_device"),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_district"), ["district"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_gateway_id"), ["gateway_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_zone"), ["zone"], unique=False)

    op.create_table(
        "gateways",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateways")),
    )
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gateways_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_gateways_status"), ["status"], unique=False)

    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("zone", sa.String(length=100), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_status"), ["status"], unique=False)

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slot", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("proposed_stations", sa.JSON(), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_by", sa.String(length=200), nullable=True),
        sa.Column("station_id", sa.String(length=64), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_alerts_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_raised_at"), ["raised_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_status"), ["status"], unique=False)
        batch_op.create_index(
            "uq_alerts_active_device_slot",
            ["device_id", "slot"],
            unique=True,
            sqlite_where=sa.text("resolved_at IS NULL"),
            postgresql_where=sa.text("resolved_at IS NULL"),
        )

    op.create_table(
        "alert_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_actions_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_actions")),
    )
    with op.batch_alter_table("alert_actions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_actions_alert_id"), ["alert_id"], unique=False)

    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_events_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_events_alert_id"), ["alert_id"], unique=False)

    op.create_table(
        "rejected_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.String(length=512), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=1000), nullable=False),
        sa.Column("device_id", sa.String(length=200), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_messages")),
    )
    with op.batch_alter_table("rejected_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rejected_messages_device_id"), ["device_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_rejected_messages_reason"), ["reason"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_rejected_messages_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "webhook_subscribers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=True),
        sa.Column("kinds", sa.JSON(), nullable=True),
        sa.Column("min_severity", sa.String(length=16), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscribers")),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["webhook_subscribers.id"],
            name=op.f("fk_webhook_outbox_subscriber_id_webhook_subscribers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_webhook_outbox_idempotency_key")),
    )
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_outbox_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("delivered_at IS NULL AND dead_at IS NULL"),
            postgresql_where=sa.text("delivered_at IS NULL AND dead_at IS NULL"),
        )
        batch_op.create_index(batch_op.f("ix_webhook_outbox_event_id"), ["event_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_webhook_outbox_subscriber_id"), ["subscriber_id"], unique=False
        )

    op.create_table(
        "stations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("district", sa.String(length=100), nullable=False),
        sa.Column("trucks", sa.Integer(), nullable=True),
        sa.Column("truck_capacity_l", sa.Float(), nullable=True),
        sa.Column("truck_capacity_bins", sa.Float(), nullable=True),
        sa.Column("shift_start", sa.String(length=8), nullable=True),
        sa.Column("shift_end", sa.String(length=8), nullable=True),
        sa.Column("collection_window_h", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
    )
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stations_district"), ["district"], unique=False)
        batch_op.create_index(batch_op.f("ix_stations_kind"), ["kind"], unique=False)

    op.create_table(
        "route_plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("depot_id", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("by", sa.String(length=100), nullable=True),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shift_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trucks", sa.Integer(), nullable=False),
        sa.Column("truck_capacity_l", sa.Float(), nullable=False),
        sa.Column("bin_volume_l", sa.Float(), nullable=False),
        sa.Column("service_s", sa.Float(), nullable=False),
        sa.Column("speed_kmh", sa.Float(), nullable=False),
        sa.Column("detour_factor", sa.Float(), nullable=False),
        sa.Column("distance_source", sa.String(length=16), nullable=False),
        sa.Column("time_limit_s", sa.Float(), nullable=False),
        sa.Column("solve_s", sa.Float(), nullable=False),
        sa.Column("solver_status", sa.String(length=100), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("unserved", sa.JSON(), nullable=False),
        sa.Column("excluded", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_plans")),
    )
    with op.batch_alter_table("route_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_route_plans_depot_id"), ["depot_id"], unique=False)
        batch_op.create_index(
            "uq_route_plans_scheduled_shift",
            ["depot_id", "shift_start"],
            unique=True,
            sqlite_where=sa.text("trigger = 'schedule'"),
            postgresql_where=sa.text("trigger = 'schedule'"),
        )

    op.create_table(
        "routes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("depot_id", sa.String(length=64), nullable=False),
        sa.Column("truck", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("load_l", sa.Float(), nullable=False),
        sa.Column("capacity_l", sa.Float(), nullable=False),
        sa.Column("depot_lat", sa.Float(), nullable=False),
        sa.Column("depot_lon", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["route_plans.id"], name=op.f("fk_routes_plan_id_route_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routes")),
    )
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routes_depot_id"), ["depot_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_routes_end_at"), ["end_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_routes_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_routes_start_at"), ["start_at"], unique=False)

    op.create_table(
        "route_stops",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("bin_id", sa.String(length=64), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("why", sa.String(length=16), nullable=False),
        sa.Column("fill_pct", sa.Float(), nullable=True),
        sa.Column("eta", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_fill_pct", sa.Float(), nullable=False),
        sa.Column("expected_load_l", sa.Float(), nullable=False),
        sa.Column("leg_m", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("by", sa.String(length=100), nullable=True),
        sa.Column("skip_reason", sa.String(length=500), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fill_after_pct", sa.Float(), nullable=True),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flag_reason", sa.String(length=500), nullable=True),
        sa.Column("checked_reading_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["route_id"], ["routes.id"], name=op.f("fk_route_stops_route_id_routes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_stops")),
    )
    with op.batch_alter_table("route_stops", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_route_stops_bin_id"), ["bin_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_route_stops_route_id"), ["route_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_route_stops_status"), ["status"], unique=False)
        batch_op.create_index("uq_route_stops_route_bin", ["route_id", "bin_id"], unique=True)

    op.create_table(
        "route_stop_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stop_id", sa.Integer(), nullable=False),
        sa.Column("route_id", sa.Integer(), nullable=False),
        sa.Column("bin_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["stop_id"], ["route_stops.id"], name=op.f("fk_route_stop_events_stop_id_route_stops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_stop_events")),
    )
    with op.batch_alter_table("route_stop_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_route_stop_events_route_id"), ["route_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_route_stop_events_stop_id"), ["stop_id"], unique=False)


def downgrade() -> None:
    """Undo this revision."""
    with op.batch_alter_table("route_stop_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_route_stop_events_stop_id"))
        batch_op.drop_index(batch_op.f("ix_route_stop_events_route_id"))

    op.drop_table("route_stop_events")
    with op.batch_alter_table("route_stops", schema=None) as batch_op:
        batch_op.drop_index("uq_route_stops_route_bin")
        batch_op.drop_index(batch_op.f("ix_route_stops_status"))
        batch_op.drop_index(batch_op.f("ix_route_stops_route_id"))
        batch_op.drop_index(batch_op.f("ix_route_stops_bin_id"))

    op.drop_table("route_stops")
    with op.batch_alter_table("routes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_routes_start_at"))
        batch_op.drop_index(batch_op.f("ix_routes_plan_id"))
        batch_op.drop_index(batch_op.f("ix_routes_end_at"))
        batch_op.drop_index(batch_op.f("ix_routes_depot_id"))

    op.drop_table("routes")
    with op.batch_alter_table("route_plans", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_route_plans_scheduled_shift",
            sqlite_where=sa.text("trigger = 'schedule'"),
            postgresql_where=sa.text("trigger = 'schedule'"),
        )
        batch_op.drop_index(batch_op.f("ix_route_plans_depot_id"))

    op.drop_table("route_plans")
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stations_kind"))
        batch_op.drop_index(batch_op.f("ix_stations_district"))

    op.drop_table("stations")
    with op.batch_alter_table("webhook_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_subscriber_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_outbox_event_id"))
        batch_op.drop_index(
            "ix_webhook_outbox_due",
            sqlite_where=sa.text("delivered_at IS NULL AND dead_at IS NULL"),
            postgresql_where=sa.text("delivered_at IS NULL AND dead_at IS NULL"),
        )

    op.drop_table("webhook_outbox")
    op.drop_table("webhook_subscribers")
    with op.batch_alter_table("rejected_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rejected_messages_received_at"))
        batch_op.drop_index(batch_op.f("ix_rejected_messages_reason"))
        batch_op.drop_index(batch_op.f("ix_rejected_messages_device_id"))

    op.drop_table("rejected_messages")
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_events_alert_id"))

    op.drop_table("alert_events")
    with op.batch_alter_table("alert_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_actions_alert_id"))

    op.drop_table("alert_actions")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alerts_active_device_slot",
            sqlite_where=sa.text("resolved_at IS NULL"),
            postgresql_where=sa.text("resolved_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_alerts_status"))
        batch_op.drop_index(batch_op.f("ix_alerts_raised_at"))
        batch_op.drop_index(batch_op.f("ix_alerts_incident_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_device_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_category"))

    op.drop_table("alerts")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_status"))

    op.drop_table("incidents")
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gateways_status"))
        batch_op.drop_index(batch_op.f("ix_gateways_kind"))

    op.drop_table("gateways")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_zone"))
        batch_op.drop_index(batch_op.f("ix_devices_status"))
        batch_op.drop_index(batch_op.f("ix_devices_kind"))
        batch_op.drop_index(batch_op.f("ix_devices_gateway_id"))
        batch_op.drop_index(batch_op.f("ix_devices_district"))

    op.drop_table("devices")
