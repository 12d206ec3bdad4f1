// The dispatcher's view: active fire alerts, live, most severe and newest first, with the
// three things a dispatcher does: acknowledge, dispatch a unit, resolve. Above them, the
// districts under peat-fire haze (js/haze.js), only while there are some.
import { ApiError, api } from "./api.js";
import { h, icon } from "./dom.js";
import { HazeStrip } from "./haze.js";
import { formatNumber, formatTime, has, t, tr } from "./i18n.js";
import { alarmWhile } from "./sound.js";

const SEVERITY_RANK = { critical: 0, major: 1, minor: 2, info: 3 };
const ACTIVE = new Set(["open", "acknowledged", "dispatched"]);
// Kinds that sound and flash until someone acknowledges them.
const LOUD = new Set(["fire.alarm", "fire.confirmed", "bin.fire"]);

export class DispatchView {
  constructor({ canAct, notify, onUnauthorized, haze }) {
    this.canAct = canAct;
    this.notify = notify;
    this.onUnauthorized = onUnauthorized;
    this.alerts = new Map(); // id -> alert (the newest version seen)
    this.devices = new Map(); // id -> promise of the device (null when unknown)
    this.known = new Map(); // id -> the device, once the registry answered
    this.incidents = new Map(); // id -> promise of the incident
    this.stations = null;
    this.loaded = false;
    this.root = h("section", { "data-testid": "view-dispatch", class: "view" });
    this.heading = h("h1", { i18n: "dispatch.title" });
    this.count = h("p", { class: "count", "aria-live": "polite" });
    this.list = h("div", { class: "alert-list", "data-testid": "alert-list" });
    this.empty = h("p", { class: "empty", i18n: "dispatch.loading" });
    // Screen readers hear each new fire once, not every re-render.
    this.announcer = h("div", { class: "visually-hidden", "aria-live": "assertive" });
    this.haze = new HazeStrip(haze);
    this.root.append(h("header", { class: "view-head" }, this.heading, this.count), this.haze.root, this.empty, this.list, this.announcer);
  }

  async reload() {
    const alerts = await api("GET", "/api/v1/alerts?active=true&category=fire&limit=1000");
    const fresh = new Map(alerts.map((alert) => [alert.id, alert]));
    // Keep stream updates newer than the list (they may have arrived while it loaded).
    for (const [id, known] of this.alerts) {
      const listed = fresh.get(id);
      if (listed && known.updated_at > listed.updated_at) fresh.set(id, known);
    }
    this.alerts = new Map([...fresh].filter(([, alert]) => ACTIVE.has(alert.status)));
    this.loaded = true;
    this.render();
  }

  // One alert change from the stream (event name alert.raised/updated/.../resolved).
  apply(alert) {
    if (alert.category !== "fire") return;
    const known = this.alerts.get(alert.id);
    if (known && known.updated_at > alert.updated_at) return; // a replayed, older version
    const isNew = !known && ACTIVE.has(alert.status);
    if (ACTIVE.has(alert.status)) this.alerts.set(alert.id, alert);
    else this.alerts.delete(alert.id);
    this.render();
    if (isNew) this.announce(alert);
    if (alert.incident_id != null) {
      this.incidents.delete(alert.incident_id); // it may have grown
      this.refreshIncident(alert.incident_id);
    }
  }

  async announce(alert) {
    const device = await this.device(alert.device_id);
    tr(this.announcer, "dispatch.announce", { kind: kindLabel(alert.kind), place: placeOf(device, alert) });
  }

  unacknowledgedLoud() {
    return [...this.alerts.values()].some((a) => a.status === "open" && LOUD.has(a.kind));
  }

  sorted() {
    return [...this.alerts.values()].sort(
      (a, b) =>
        (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) ||
        (a.raised_at < b.raised_at ? 1 : a.raised_at > b.raised_at ? -1 : b.id - a.id),
    );
  }

  // Redraw every card (after a language switch: times and numbers change with it).
  redraw() {
    for (const card of this.list.children) card.dataset.version = "";
    this.render();
    this.haze.render();
  }

  render() {
    const alerts = this.sorted();
    tr(this.count, "dispatch.count", { count: formatNumber(alerts.length) });
    this.empty.hidden = this.loaded && alerts.length > 0;
    tr(this.empty, this.loaded ? "dispatch.empty" : "dispatch.loading");
    // Reuse cards by id so that focus, open dialogs and open histories survive updates.
    const cards = new Map([...this.list.children].map((card) => [Number(card.dataset.alertId), card]));
    const wanted = alerts.map((alert) => {
      const existing = cards.get(alert.id);
      if (existing && existing.dataset.version === alert.updated_at) return existing;
      const card = this.card(alert, existing);
      if (existing) existing.replaceWith(card);
      return card;
    });
    for (const [id, card] of cards) if (!this.alerts.has(id)) card.remove();
    wanted.forEach((card, index) => {
      if (this.list.children[index] !== card) this.list.insertBefore(card, this.list.children[index] ?? null);
    });
    if (this.unacknowledgedLoud()) alarmWhile(() => this.unacknowledgedLoud());
  }

  card(alert, previous) {
    const loud = alert.status === "open" && LOUD.has(alert.kind);
    const where = h("p", { class: "where" });
    const details = previous?.querySelector("details");
    const history = h("details", { class: "history", ontoggle: (e) => e.target.open && this.loadHistory(alert.id, e.target) },
      h("summary", { i18n: "alert.history" }),
      h("ol", { class: "history-list" }),
    );
    if (details?.open) {
      history.open = true;
      this.loadHistory(alert.id, history);
    }
    const card = h(
      "article",
      {
        "data-testid": "alert",
        "data-alert-id": alert.id,
        "data-status": alert.status,
        "data-kind": alert.kind,
        "data-severity": alert.severity,
        "data-version": alert.updated_at,
        class: `alert severity-${alert.severity}${loud ? " flashing" : ""}`,
        tabindex: "-1",
      },
      h("header", { class: "alert-head" },
        icon("fire", "icon kind-icon"),
        h("h2", { class: "kind", i18n: has(`kind.${alert.kind}`) ? `kind.${alert.kind}` : "kind.unknown" }),
        h("span", { class: `chip status-${alert.status}`, i18n: `status.${alert.status}` }),
        h("span", { class: "chip severity", i18n: `severity.${alert.severity}` }),
      ),
      where,
      h("dl", { class: "facts" },
        h("dt", { i18n: "alert.reason" }), h("dd", { text: alert.reason }),
        h("dt", { i18n: "alert.raised" }), h("dd", { text: formatTime(alert.raised_at), "data-time": alert.raised_at }),
      ),
      h("p", { class: "meta" },
        alert.escalation_level > 0 ? h("span", { class: "chip escalated", i18n: ["alert.escalation", { level: alert.escalation_level }] }) : null,
        alert.station_id ? h("span", { class: "chip", i18n: ["alert.station", { station: alert.station_id }] }) : null,
      ),
      this.incidentLine(alert),
      this.canAct() ? this.actions(alert) : null,
      history,
    );
    this.fillWhere(where, alert);
    return card;
  }

  incidentLine(alert) {
    if (alert.incident_id == null) return null;
    const line = h("div", { class: "incident", "data-incident-id": alert.incident_id });
    this.refreshIncident(alert.incident_id, [line]);
    return line;
  }

  // An incident grows as more detectors confirm: every card of it shows the current list.
  // Cards share one request per incident; a change of any of its alerts asks again.
  async refreshIncident(id, lines = this.list.querySelectorAll(`.incident[data-incident-id="${id}"]`)) {
    if (!this.incidents.has(id)) {
      this.incidents.set(id, api("GET", `/api/v1/incidents/${id}`).catch(() => {
        this.incidents.delete(id);
        return null;
      }));
    }
    const incident = await this.incidents.get(id);
    if (!incident) return;
    for (const line of lines) {
      line.replaceChildren(
        h("a", { href: `#incident/${incident.id}`, class: "incident-link", "data-testid": "incident-link" },
          h("strong", { i18n: ["alert.incident", { id: incident.id }] }),
        ),
        h("span", { class: "members", text: incident.device_ids.join(", ") }),
      );
    }
  }

  // Where first: the device's name, zone and district as registered. Drawn at once from
  // what is known (the device id until the registry answers), so a card is never blank.
  fillWhere(where, alert) {
    const draw = (device) =>
      where.replaceChildren(
        h("strong", { class: "place", text: device?.name || alert.device_id }),
        h("span", { class: "part" },
          h("span", { class: "label", i18n: "alert.zone" }),
          device?.zone ? h("span", { text: device.zone }) : h("span", { i18n: "alert.no_zone" }),
        ),
        device?.district
          ? h("span", { class: "part" }, h("span", { class: "label", i18n: "alert.district" }), h("span", { text: device.district }))
          : null,
        h("span", { class: "device-id", text: alert.device_id }),
      );
    const known = this.known.get(alert.device_id);
    if (known !== undefined) {
      draw(known);
      return;
    }
    where.replaceChildren(h("strong", { class: "place", text: alert.device_id }));
    this.device(alert.device_id).then(draw);
  }

  device(id) {
    if (!this.devices.has(id)) {
      const found = api("GET", `/api/v1/devices/${encodeURIComponent(id)}`).then(
        (device) => {
          this.known.set(id, device);
          return device;
        },
        () => {
          this.devices.delete(id); // asked again at the next change (the registry may be back)
          return null;
        },
      );
      this.devices.set(id, found);
    }
    return this.devices.get(id);
  }

  actions(alert) {
    const row = h("div", { class: "actions" });
    if (alert.status === "open") {
      row.append(h("button", { type: "button", class: "primary", "data-action": "ack", i18n: "action.ack", onclick: () => this.act(alert, "ack", {}) }));
    }
    if (alert.status === "open" || alert.status === "acknowledged") {
      row.append(h("button", { type: "button", "data-action": "dispatch", i18n: "action.dispatch", onclick: () => this.dispatchDialog(alert) }));
    }
    row.append(h("button", { type: "button", "data-action": "resolve", i18n: "action.resolve", onclick: () => this.resolveDialog(alert) }));
    return row;
  }

  async act(alert, action, body) {
    try {
      this.apply(await api("POST", `/api/v1/alerts/${alert.id}/${action}`, body));
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) this.onUnauthorized();
      else this.notify("error.action", { detail: error instanceof ApiError ? error.message : t("error.network") });
      return false;
    }
  }

  async loadHistory(id, details) {
    const list = details.querySelector("ol");
    tr(list, "alert.history_loading");
    try {
      const actions = await api("GET", `/api/v1/alerts/${id}/actions`);
      list.replaceChildren();
      if (!actions.length) list.append(h("li", { i18n: "alert.history_empty" }));
      for (const a of actions) {
        const key = has(`audit.${a.action}`) ? `audit.${a.action}` : "audit.other";
        const outcome = a.details?.outcome ? t(`status.${a.details.outcome}`) : "";
        list.append(
          h("li", {},
            h("span", { text: formatTime(a.at), class: "when" }), " ",
            h("span", { i18n: [key, { by: a.by, station: a.details?.station_id ?? "", level: a.details?.level ?? "", outcome, action: a.action }] }),
          ),
        );
      }
      delete list.dataset.i18n;
    } catch {
      tr(list, "error.network");
    }
  }

  async dispatchDialog(alert) {
    const [device, stations] = await Promise.all([this.device(alert.device_id), this.fireStations()]);
    const proposed = alert.proposed_stations || [];
    const ranked = stations
      .map((s) => ({ ...s, km: device ? haversineKm(device.lat, device.lon, s.lat, s.lon) : null, rank: proposed.indexOf(s.id) }))
      .sort((a, b) => (a.rank < 0) - (b.rank < 0) || (a.rank - b.rank) || (a.km ?? 0) - (b.km ?? 0));
    const form = h("form", { method: "dialog" });
    const dialog = h("dialog", { "data-testid": "dispatch-dialog", "aria-labelledby": "dispatch-title" },
      form,
    );
    form.append(h("h2", { id: "dispatch-title", i18n: "dialog.dispatch.title" }));
    if (!ranked.length) form.append(h("p", { i18n: "dialog.dispatch.none" }));
    const list = h("div", { class: "stations", role: "radiogroup" });
    ranked.forEach((s, index) => {
      list.append(
        h("label", { class: "station" },
          h("input", { type: "radio", name: "station", value: s.id, checked: index === 0 }),
          h("span", { class: "station-name", text: s.name || s.id }),
          s.km === null ? null : h("span", { class: "distance", i18n: ["dialog.dispatch.distance", { km: formatNumber(s.km, 1) }] }),
          s.rank >= 0 ? h("span", { class: "chip proposed", i18n: "dialog.dispatch.proposed" }) : null,
        ),
      );
    });
    form.append(list, this.dialogButtons(dialog, "dialog.dispatch.confirm", "confirm-dispatch", !ranked.length));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const chosen = form.querySelector("input[name=station]:checked");
      if (chosen && (await this.act(alert, "dispatch", { station_id: chosen.value }))) dialog.close();
    });
    this.open(dialog);
  }

  resolveDialog(alert) {
    const form = h("form", { method: "dialog" });
    const dialog = h("dialog", { "data-testid": "resolve-dialog", "aria-labelledby": "resolve-title" }, form);
    const outcome = h("select", { name: "outcome", id: "outcome" },
      ...["resolved", "false_alarm", "cancelled"].map((o) => h("option", { value: o, i18n: `status.${o}` })),
    );
    const note = h("textarea", { name: "note", id: "note", rows: "2", maxlength: "1000" });
    form.append(
      h("h2", { id: "resolve-title", i18n: "dialog.resolve.title" }),
      h("label", { for: "outcome", i18n: "dialog.resolve.outcome" }), outcome,
      h("label", { for: "note", i18n: "dialog.resolve.note" }), note,
      this.dialogButtons(dialog, "dialog.resolve.confirm", "confirm-resolve"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { outcome: outcome.value };
      if (note.value.trim()) body.note = note.value.trim();
      if (await this.act(alert, "resolve", body)) dialog.close();
    });
    this.open(dialog);
  }

  dialogButtons(dialog, confirmKey, testid, disabled = false) {
    return h("div", { class: "dialog-buttons" },
      h("button", { type: "button", i18n: "dialog.cancel", onclick: () => dialog.close() }),
      h("button", { type: "submit", class: "primary", "data-testid": testid, i18n: confirmKey, disabled }),
    );
  }

  open(dialog) {
    document.body.append(dialog);
    dialog.addEventListener("close", () => dialog.remove());
    dialog.showModal();
  }

  async fireStations() {
    if (this.stations === null) {
      this.stations = await api("GET", "/api/v1/stations?kind=fire_station&limit=1000").catch(() => null);
    }
    return this.stations ?? [];
  }
}

export function kindLabel(kind) {
  return t(has(`kind.${kind}`) ? `kind.${kind}` : "kind.unknown");
}

function placeOf(device, alert) {
  return device?.name || alert.device_id;
}

function haversineKm(lat1, lon1, lat2, lon2) {
  const rad = Math.PI / 180;
  const a =
    Math.sin(((lat2 - lat1) * rad) / 2) ** 2 +
    Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 12742 * Math.asin(Math.sqrt(a));
}
