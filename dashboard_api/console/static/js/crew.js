// The waste crew's view. A crew picks its depot and truck and works through today's route
// stop by stop (one tap: done; skip asks why); below, the supervisor's part: bins full or
// predicted full within N hours, and planning a depot's routes for the shift.
import { ApiError, api } from "./api.js";
import { h } from "./dom.js";
import { MapCanvas } from "./map.js";
import { formatNumber, formatTime, t, tr } from "./i18n.js";

const STORE_KEY = "sigap.crew"; // {depot, truck, hours}: a preference, not a secret
const DEFAULT_HOURS = 8;
const WIB_MS = 7 * 3600 * 1000; // WIB is UTC+7 all year (no daylight saving)
// A burst of bin.full alerts (the demo fills five bins at once) refreshes a list once.
const REFRESH_AFTER_MS = 1500;
// Coming back to the tab reloads what is older than this (no polling while it is shown).
const STALE_MS = 30 * 1000;
const SKIP_REASONS = ["blocked", "road", "missing", "damaged", "truck_full", "other"];
const EXCLUDED = ["burning", "on_route", "no_reading", "not_due"];
// The planner's reasons for an unserved bin (pickup_routes/problem.py: why_unserved), read
// back into catalogue messages; anything else is shown as the server wrote it.
const UNSERVED = [
  [/^holds (\d+) L, more than a truck takes \((\d+) L\)$/, "crew.plan.unserved.capacity", ["load", "capacity"]],
  [/^there and back takes (\d+) min with the pickup, longer than the (\d+) min shift$/, "crew.plan.unserved.far", ["minutes", "shift"]],
  [/^no truck had room or time left \((\d+) x (\d+) L, ([\d.]+) h shift\)$/, "crew.plan.unserved.room", ["trucks", "capacity", "hours"]],
  [/^not in the supplied distance matrix$/, "crew.plan.unserved.matrix", []],
];

export class CrewView {
  constructor({ session, canAct, notify, onUnauthorized }) {
    this.session = session;
    this.canAct = canAct;
    this.notify = notify;
    this.onUnauthorized = onUnauthorized;
    this.prefs = loadPrefs();
    this.depots = null; // waste depots, once loaded
    this.route = null; // the truck's route shown (the API's RoutePublic)
    this.todays = []; // the truck's routes for today, newest first
    this.routeChoice = null; // a route id picked among today's (default: the newest)
    this.routeState = "choose"; // choose | loading | none | shown | failed
    this.bins = new Map(); // bin id -> the API's BinPublic (name, district, fill now)
    this.due = null; // bins full or predicted full within the hours asked
    this.dueState = "loading"; // loading | shown | failed
    this.plans = new Map(); // depot id -> the newest plan made here
    this.planning = new Set(); // depot ids being planned
    this.busyStops = new Set(); // bin ids with a done/skip on its way
    this.loadedAt = 0;
    this.stale = { route: false, due: false };
    this.timers = {};
    this.visible = false;

    this.root = h("section", { "data-testid": "view-crew", class: "view crew" });
    this.depotSelect = h("select", { id: "crew-depot", name: "depot", "data-testid": "crew-depot" });
    this.truckSelect = h("select", { id: "crew-truck", name: "truck", "data-testid": "crew-truck" });
    this.depotSelect.addEventListener("change", () => this.choose(this.depotSelect.value || null, null));
    this.truckSelect.addEventListener("change", () => this.choose(this.prefs.depot, Number(this.truckSelect.value) || null));
    const refresh = h("button", { type: "button", class: "refresh", "data-testid": "crew-refresh", i18n: "crew.refresh", onclick: () => this.reload(true) });
    this.routeBox = h("div", { class: "route-box", "data-testid": "route" });
    this.routeMap = h("div", { class: "route-map", "data-testid": "route-map", hidden: true });
    this.map = new MapCanvas({ label: "crew.route_map" });
    this.routeMap.append(this.map.root);
    this.stopList = h("ol", { class: "stop-list", "data-testid": "stop-list" });
    this.announcer = h("div", { class: "visually-hidden", "aria-live": "polite" });

    this.hoursInput = h("input", { id: "crew-hours", name: "hours", type: "number", min: "0", max: "168", step: "1", inputmode: "numeric", "data-testid": "due-hours" });
    this.hoursInput.value = String(this.prefs.hours);
    this.hoursInput.addEventListener("input", () => this.later("hours", () => this.changeHours(), 400));
    this.hoursInput.addEventListener("change", () => this.changeHours());
    this.dueCount = h("p", { class: "count", "aria-live": "polite" });
    this.dueList = h("ol", { class: "due-list", "data-testid": "due-list" });
    this.dueEmpty = h("p", { class: "empty" });
    this.depotList = h("ul", { class: "depot-list", "data-testid": "depot-list" });

    this.root.append(
      h("header", { class: "view-head" }, h("h1", { i18n: "crew.title" })),
      h("div", { class: "crew-grid" },
        h("section", { class: "card crew-route", "aria-labelledby": "crew-route-title" },
          h("h2", { id: "crew-route-title", i18n: "crew.route.heading" }),
          h("form", { class: "crew-pick", onsubmit: (e) => e.preventDefault() },
            h("div", { class: "field" }, h("label", { for: "crew-depot", i18n: "crew.depot" }), this.depotSelect),
            h("div", { class: "field" }, h("label", { for: "crew-truck", i18n: "crew.truck" }), this.truckSelect),
            refresh,
          ),
          this.routeBox,
          this.routeMap,
          this.stopList,
          this.announcer,
        ),
        h("section", { class: "card crew-supervisor", "data-testid": "supervisor", "aria-labelledby": "crew-due-title" },
          h("h2", { id: "crew-due-title", i18n: "crew.due.title" }),
          h("div", { class: "field hours" }, h("label", { for: "crew-hours", i18n: "crew.due.hours" }), this.hoursInput),
          this.dueCount,
          this.dueEmpty,
          this.dueList,
          h("h2", { id: "crew-plan-title", i18n: "crew.plan.title" }),
          h("p", { class: "help", i18n: this.canAct() ? "crew.plan.help" : "crew.readonly" }),
          this.depotList,
        ),
      ),
    );
    this.render();
  }

  // -- the view's life ---------------------------------------------------------------------

  // Depots, the chosen truck's route and the supervisor's list. Never rejects: app.js waits
  // for every view's reload when the live stream (re)opens.
  reload(force = false) {
    if (this.loading) return this.loading;
    // Before the view is first opened there is nothing to catch up on: show() loads it.
    if (!this.visible && !this.loadedAt) {
      this.stale = { route: true, due: true };
      return Promise.resolve();
    }
    if (!force && Date.now() - this.loadedAt < 2000) return Promise.resolve();
    this.loading = (async () => {
      try {
        await this.loadDepots();
        await Promise.all([this.loadRoute(), this.loadDue()]);
        this.loadedAt = Date.now();
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  show() {
    this.visible = true;
    if (this.stale.route || this.stale.due || Date.now() - this.loadedAt > STALE_MS) {
      this.stale = { route: false, due: false };
      this.reload(true);
    }
  }

  hide() {
    this.visible = false;
  }

  redraw() {
    this.render();
  }

  // A bin.full alert for a bin on the route refreshes the route; any bin.full refreshes the
  // supervisor's list (a bin that filled faster than predicted belongs in it). Hidden, the
  // view only notes it and reloads when shown.
  apply(alert) {
    if (alert.kind !== "bin.full") return;
    if (this.route?.stops.some((stop) => stop.bin_id === alert.device_id)) this.refreshSoon("route");
    this.refreshSoon("due");
  }

  refreshSoon(what) {
    if (!this.visible) {
      this.stale[what] = true;
      return;
    }
    // A throttle, not a debounce: a steady trickle of alerts still refreshes now and then.
    if (this.timers[what]) return;
    this.timers[what] = setTimeout(() => {
      this.timers[what] = null;
      if (what === "route") this.loadRoute();
      else this.loadDue();
    }, REFRESH_AFTER_MS);
  }

  later(name, work, ms) {
    clearTimeout(this.timers[name]);
    this.timers[name] = setTimeout(work, ms);
  }

  // -- loading -------------------------------------------------------------------------------

  async loadDepots() {
    try {
      const depots = await api("GET", "/api/v1/stations?kind=waste_depot&limit=1000");
      this.depots = depots.sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
    } catch (error) {
      this.failed(error);
      this.depots = this.depots ?? [];
    }
    if (this.prefs.depot && !this.depot()) this.prefs.depot = null;
    this.renderPick();
    this.renderDepots();
  }

  async loadRoute() {
    const { depot, truck } = this.prefs;
    if (!depot || !truck) {
      this.route = null;
      this.routeState = "choose";
      this.renderRoute();
      return;
    }
    if (this.routeState !== "shown") {
      this.routeState = "loading";
      this.renderRoute();
    }
    try {
      // From yesterday's WIB midnight: a night shift that began yesterday is still today's.
      const since = new Date(wibMidnight(new Date()) - 24 * 3600 * 1000).toISOString();
      const routes = await api("GET", `/api/v1/routes?depot_id=${encodeURIComponent(depot)}&since=${encodeURIComponent(since)}&limit=1000`);
      if (this.prefs.depot !== depot || this.prefs.truck !== truck) return; // chosen again meanwhile
      this.todays = todaysRoutes(routes, truck, new Date());
      this.route = this.todays.find((r) => r.id === this.routeChoice) ?? this.todays[0] ?? null;
      this.routeState = this.route ? "shown" : "none";
      if (this.route) await this.loadBins(this.route.stops.map((stop) => stop.bin_id));
    } catch (error) {
      this.failed(error);
      this.routeState = "failed";
      this.route = null;
      this.todays = [];
    }
    this.renderPick(); // a route may name a truck the depot no longer lists
    this.renderRoute();
  }

  // Name and district from the registry, and the fill now, of each bin on the route.
  async loadBins(ids) {
    const found = await Promise.all(
      ids.map((id) => api("GET", `/api/v1/bins/${encodeURIComponent(id)}`).catch((error) => {
        if (error instanceof ApiError && error.status === 401) throw error;
        return null;
      })),
    );
    found.forEach((bin, index) => {
      if (bin) this.bins.set(ids[index], bin);
    });
  }

  async loadDue() {
    const hours = this.prefs.hours;
    try {
      const bins = await api("GET", `/api/v1/bins?full_within_h=${encodeURIComponent(hours)}&limit=100000`);
      if (this.prefs.hours !== hours) return;
      this.due = bins.sort(
        (a, b) => a.hours_to_full - b.hours_to_full || (b.fill_pct ?? 0) - (a.fill_pct ?? 0) || a.id.localeCompare(b.id),
      );
      this.dueState = "shown";
    } catch (error) {
      this.failed(error);
      this.dueState = "failed";
    }
    this.renderDue();
  }

  failed(error) {
    if (error instanceof ApiError && error.status === 401) this.onUnauthorized();
  }

  depot(id = this.prefs.depot) {
    return this.depots?.find((d) => d.id === id) ?? null;
  }

  choose(depot, truck) {
    const changedDepot = depot !== this.prefs.depot;
    this.prefs.depot = depot;
    this.prefs.truck = changedDepot ? null : truck;
    savePrefs(this.prefs);
    this.route = null;
    this.todays = [];
    this.routeChoice = null;
    this.routeState = "loading";
    this.renderPick();
    this.loadRoute();
  }

  changeHours() {
    clearTimeout(this.timers.hours);
    const hours = Number(this.hoursInput.value);
    if (this.hoursInput.value === "" || !Number.isFinite(hours) || hours < 0) return;
    if (hours === this.prefs.hours) return;
    this.prefs.hours = hours;
    savePrefs(this.prefs);
    this.dueState = "loading";
    this.renderDue();
    this.loadDue();
  }

  // -- drawing -------------------------------------------------------------------------------

  render() {
    this.renderPick(true);
    this.renderRoute();
    this.renderDue();
    this.renderDepots();
  }

  // Rebuilt only when the choices change (or the language did), so that a refresh does not
  // close a list someone has open.
  renderPick(force = false) {
    const depots = this.depots ?? [];
    const depot = this.depot();
    const trucks = new Set();
    for (let n = 1; n <= (depot?.trucks ?? 0); n += 1) trucks.add(n);
    for (const r of this.todays) trucks.add(r.truck);
    if (this.prefs.truck) trucks.add(this.prefs.truck);
    const signature = JSON.stringify([this.depots === null, depots.map((d) => [d.id, d.name]), [...trucks]]);
    if (force || signature !== this.pickSignature) {
      this.pickSignature = signature;
      this.fillPick(depots, trucks);
    }
    this.depotSelect.value = this.prefs.depot ?? "";
    this.truckSelect.value = this.prefs.truck ? String(this.prefs.truck) : "";
    this.truckSelect.disabled = !depot;
  }

  fillPick(depots, trucks) {
    this.depotSelect.replaceChildren(
      h("option", { value: "", i18n: depots.length || this.depots === null ? "crew.pick_depot" : "crew.no_depots" }),
      ...depots.map((d) => h("option", { value: d.id, text: d.name || d.id })),
    );
    this.truckSelect.replaceChildren(
      h("option", { value: "", i18n: "crew.pick_truck" }),
      ...[...trucks].sort((a, b) => a - b).map((n) => h("option", { value: String(n), i18n: ["crew.truck_n", { n }] })),
    );
  }

  // A truck with more than one route today (an extra plan during the shift): which to show.
  routeChooser(route) {
    if (this.todays.length < 2) return [];
    const chooser = h("select", { id: "crew-route", name: "route", "data-testid": "crew-route" },
      ...this.todays.map((r, index) => h("option", { value: String(r.id), i18n: [index ? "crew.route.option" : "crew.route.option_newest", {
        id: r.id, start: formatTime(r.start_at), left: formatNumber(r.stops.filter((s) => s.status === "planned").length),
      }] })),
    );
    chooser.value = String(route.id);
    chooser.addEventListener("change", () => {
      this.routeChoice = Number(chooser.value);
      this.route = this.todays.find((r) => r.id === this.routeChoice) ?? this.route;
      this.renderRoute();
      this.routeBox.querySelector("#crew-route")?.focus();
      this.loadBins(this.route.stops.map((stop) => stop.bin_id)).then(() => this.renderRoute(), (error) => this.failed(error));
    });
    return [
      h("div", { class: "field route-choice" },
        h("label", { for: "crew-route", i18n: ["crew.route.several", { count: formatNumber(this.todays.length) }] }),
        chooser,
      ),
    ];
  }

  renderRoute() {
    const route = this.route;
    this.showRouteOnMap(route ? route.geojson : null, route);
    if (!route) {
      const key = { choose: "crew.route.choose", loading: "crew.route.loading", none: "crew.route.none", failed: "crew.route.failed" }[this.routeState] ?? "crew.route.choose";
      this.routeBox.replaceChildren(h("p", { class: this.routeState === "failed" ? "error" : "empty", "data-testid": "route-empty", i18n: key }));
      this.stopList.replaceChildren();
      delete this.stopList.dataset.routeId;
      return;
    }
    const left = route.stops.filter((s) => s.status === "planned").length;
    this.stopList.dataset.routeId = route.id;
    this.routeBox.replaceChildren(
      ...this.routeChooser(route),
      h("div", { class: "route-head", "data-route-id": route.id, "data-route-status": route.status },
        h("h3", { i18n: ["crew.route.title", { truck: route.truck }] }),
        h("span", { class: `chip route-status-${route.status}`, i18n: `crew.route.status.${route.status}` }),
      ),
      h("p", { class: "progress", i18n: ["crew.route.progress", { left: formatNumber(left), total: formatNumber(route.stops.length) }] }),
      facts("route-facts",
        ["crew.route.start", h("dd", { text: formatTime(route.start_at) })],
        ["crew.route.end", h("dd", { text: formatTime(route.end_at) })],
        ["crew.route.distance", h("dd", { i18n: ["crew.km", { km: formatNumber(route.distance_m / 1000, 1) }] })],
        ["crew.route.load", h("dd", { i18n: ["crew.load_of", { load: formatNumber(route.load_l), capacity: formatNumber(route.capacity_l) }] })],
      ),
      ...(route.flagged ? [h("p", { class: "flag-note", i18n: "crew.route.flagged" })] : []),
      ...(this.canAct() ? [] : [h("p", { class: "help", i18n: "crew.readonly" })]),
    );
    this.stopList.replaceChildren(...route.stops.map((stop) => this.stopItem(stop)));
  }

  stopItem(stop) {
    const bin = this.bins.get(stop.bin_id);
    const busy = this.busyStops.has(stop.bin_id);
    const item = h("li", {
      "data-testid": "stop",
      "data-bin-id": stop.bin_id,
      "data-status": stop.status,
      "data-seq": stop.seq,
      class: `stop stop-${stop.status}`,
      tabindex: "-1",
    },
      h("div", { class: "stop-head" },
        h("span", { class: "seq", "aria-hidden": "true", text: stop.seq }),
        h("div", { class: "crew-where" },
          h("strong", { class: "place", text: bin?.name || stop.bin_id }),
          h("span", { class: "sub" },
            h("span", { class: `chip stop-status status-${stop.status}`, "data-testid": "stop-status", i18n: `crew.stop.status.${stop.status}` }),
            h("span", { class: "part" },
              h("span", { class: "label", i18n: "crew.district" }),
              bin?.district ? h("span", { text: bin.district }) : h("span", { i18n: "crew.unknown" }),
            ),
            h("span", { class: "bin-id", text: stop.bin_id }),
          ),
        ),
      ),
      facts("stop-facts",
        ["crew.stop.eta", h("dd", { class: "eta", text: formatTime(stop.eta), "data-time": stop.eta })],
        ["crew.stop.expected", h("dd", { i18n: ["crew.pct", { pct: formatNumber(stop.expected_fill_pct) }] })],
        ["crew.stop.fill_now", pctCell(bin?.fill_pct)],
        ["crew.stop.full_at", fullAtCell(bin)],
        ...this.stopHistory(stop),
      ),
      this.canAct() ? this.stopActions(stop, busy) : null,
    );
    return item;
  }

  // What happened to a stop: who marked it, why it was skipped, what the sensor said.
  stopHistory(stop) {
    const rows = [];
    if (stop.status === "done" || stop.status === "flagged") {
      if (stop.done_at) rows.push(["crew.stop.done_at", h("dd", { text: whoWhen(stop.done_at, stop.by) }), "wide"]);
      if (stop.confirmed_at) rows.push(["crew.stop.confirmed", h("dd", { text: formatTime(stop.confirmed_at) })]);
    }
    if (stop.status === "skipped") {
      rows.push(["crew.stop.skip_reason", h("dd", { class: "skip-reason", text: stop.skip_reason || "" }), "wide"]);
      if (stop.by) rows.push(["crew.stop.by", h("dd", { text: stop.by })]);
    }
    if (stop.status === "flagged" && stop.flag_reason) {
      rows.push(["crew.stop.flag_reason", h("dd", { text: stop.flag_reason }), "wide"]);
    }
    return rows;
  }

  stopActions(stop, busy) {
    const row = h("div", { class: "actions stop-actions" });
    // planned -> done or skipped; flagged -> done again (the crew went back to it).
    if (stop.status === "planned" || stop.status === "flagged") {
      row.append(h("button", {
        type: "button", class: "primary big done", "data-stop-action": "done", disabled: busy,
        i18n: "crew.stop.done", onclick: () => this.markDone(stop),
      }));
    }
    if (stop.status === "planned") {
      row.append(h("button", {
        type: "button", class: "big skip", "data-stop-action": "skip", disabled: busy,
        i18n: "crew.stop.skip", onclick: () => this.skipDialog(stop),
      }));
    }
    return row.children.length ? row : null;
  }

  // The route on the map: the path and the depot from its GeoJSON (straight legs: there is
  // no road geometry; positions are [lon, lat]), and each stop numbered in order, drawn by
  // its status (to collect, done, skipped or flagged). Null when no route is shown.
  showRouteOnMap(geojson, route = null) {
    this.routeGeojson = geojson;
    if (route) this.routeMap.dataset.routeId = route.id;
    else delete this.routeMap.dataset.routeId;
    this.routeMap.hidden = !geojson;
    if (!geojson) return;
    const features = geojson.features ?? [];
    const points = (role) => features.filter((f) => f.geometry?.type === "Point" && f.properties?.role === role);
    const STOP_STATE = { planned: "full", done: "ok", skipped: "offline", flagged: "fault" };
    // Stops from the route itself, not its GeoJSON: a tap changes a stop's status in place.
    const stops = (route?.stops ?? []).map((stop) => ({
      id: stop.bin_id,
      kind: "bin",
      lon: stop.lon,
      lat: stop.lat,
      state: STOP_STATE[stop.status] ?? "full",
      seq: stop.seq,
    }));
    this.map.setLines(features.filter((f) => f.geometry?.type === "LineString").map((f) => f.geometry.coordinates));
    this.map.setPlaces(points("depot").map((f) => ({ id: f.properties.depot_id, kind: "waste_depot", lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1], place: true })));
    this.map.setPoints(stops);
    this.map.setLabels(stops.map((s) => ({ text: formatNumber(s.seq), lat: s.lat, lon: s.lon, dy: -12 })));
    // A new route is fitted; the same route after a tap stays where the crew left it.
    if (this.mapRouteId !== route?.id) {
      this.mapRouteId = route?.id;
      this.map.following = true;
      this.map.fit();
    }
  }

  renderDue() {
    const due = this.due ?? [];
    const hours = formatNumber(this.prefs.hours, Number.isInteger(this.prefs.hours) ? 0 : 1);
    tr(this.dueCount, "crew.due.count", { count: formatNumber(due.length) });
    this.dueCount.hidden = this.dueState !== "shown";
    const emptyKey = { loading: "crew.due.loading", failed: "crew.due.failed" }[this.dueState] ?? "crew.due.empty";
    tr(this.dueEmpty, emptyKey, { hours });
    this.dueEmpty.className = this.dueState === "failed" ? "error" : "empty";
    this.dueEmpty.hidden = this.dueState === "shown" && due.length > 0;
    this.dueList.replaceChildren(...due.map((bin) => this.dueItem(bin)));
  }

  dueItem(bin) {
    const full = bin.level === "full" || bin.hours_to_full === 0;
    return h("li", { "data-testid": "due-bin", "data-bin-id": bin.id, "data-level": bin.level ?? "", class: `due ${full ? "due-full" : "due-soon"}` },
      h("div", { class: "crew-where" },
        h("strong", { class: "place", text: bin.name || bin.id }),
        h("span", { class: "sub" },
          h("span", { class: `chip ${full ? "level-full" : "level-soon"}`, i18n: full ? "crew.due.full_now" : "crew.due.soon" }),
          bin.district ? h("span", { class: "part" }, h("span", { class: "label", i18n: "crew.district" }), h("span", { text: bin.district })) : null,
          h("span", { class: "bin-id", text: bin.id }),
        ),
      ),
      facts("due-facts",
        ["crew.due.fill", pctCell(bin.fill_pct)],
        ["crew.due.rate", bin.fill_rate_pct_per_h == null
          ? h("dd", { i18n: "crew.unknown" })
          : h("dd", { i18n: ["crew.rate", { rate: formatNumber(bin.fill_rate_pct_per_h, 1) }] })],
        ...(full ? [] : [["crew.stop.full_at", fullAtCell(bin)]]),
      ),
    );
  }

  renderDepots() {
    if (this.depots === null) {
      this.depotList.replaceChildren(h("li", { class: "empty", i18n: "crew.loading" }));
      return;
    }
    if (!this.depots.length) {
      this.depotList.replaceChildren(h("li", { class: "empty", i18n: "crew.no_depots" }));
      return;
    }
    this.depotList.replaceChildren(...this.depots.map((depot) => this.depotItem(depot)));
  }

  depotItem(depot) {
    const busy = this.planning.has(depot.id);
    const plan = this.plans.get(depot.id);
    return h("li", { class: "depot", "data-testid": "depot", "data-depot-id": depot.id },
      h("div", { class: "depot-head" },
        h("strong", { class: "place", text: depot.name || depot.id }),
        h("span", { i18n: ["crew.plan.shift", {
          start: hhmm(depot.shift_start), end: hhmm(depot.shift_end), trucks: formatNumber(depot.trucks ?? 0),
        }] }),
        this.canAct()
          ? h("button", {
            type: "button", class: "primary", "data-testid": "plan-routes", "data-depot-id": depot.id, disabled: busy,
            "aria-busy": busy ? "true" : null, i18n: busy ? "crew.plan.busy" : "crew.plan.button", onclick: () => this.plan(depot),
          })
          : null,
      ),
      plan ? this.planResult(plan) : null,
    );
  }

  planResult(plan) {
    const bins = plan.routes.reduce((sum, r) => sum + r.stops.length, 0);
    const excluded = Object.fromEntries(EXCLUDED.map((reason) => [reason, plan.excluded.filter((e) => e.reason === reason).length]));
    return h("div", { class: "plan-result", "data-testid": "plan-result", "data-plan-id": plan.id, "aria-live": "polite" },
      h("p", { class: "plan-summary", i18n: ["crew.plan.result", {
        id: plan.id, routes: formatNumber(plan.routes.length), bins: formatNumber(bins), km: formatNumber(plan.distance_m / 1000, 1),
      }] }),
      plan.routes.length
        ? h("ul", { class: "plan-routes" },
          ...plan.routes.map((r) => h("li", { "data-testid": "plan-route", "data-route-id": r.id, "data-truck": r.truck, i18n: ["crew.plan.route", {
            truck: r.truck, stops: formatNumber(r.stops.length), km: formatNumber(r.distance_m / 1000, 1), load: formatNumber(r.load_l),
          }] })))
        : h("p", { class: "empty", i18n: plan.unserved.length ? "crew.plan.no_routes" : "crew.plan.nothing" }),
      plan.unserved.length
        ? h("div", { class: "unserved" },
          h("h3", { i18n: ["crew.plan.unserved_title", { count: formatNumber(plan.unserved.length) }] }),
          h("ul", {},
            ...plan.unserved.map((u) => h("li", { "data-testid": "unserved", "data-bin-id": u.bin_id },
              h("strong", { text: this.bins.get(u.bin_id)?.name || this.dueName(u.bin_id) || u.bin_id }), " ",
              h("span", { class: "chip", i18n: `crew.why.${u.why}` }), " ",
              unservedReason(u.reason),
            ))))
        : null,
      EXCLUDED.some((reason) => excluded[reason])
        ? h("p", { class: "excluded" },
          h("span", { class: "label", i18n: "crew.plan.excluded" }),
          ...EXCLUDED.filter((reason) => excluded[reason]).map((reason) =>
            h("span", { class: "chip", "data-reason": reason, i18n: [`crew.plan.excluded.${reason}`, { count: formatNumber(excluded[reason]) }] })))
        : null,
    );
  }

  dueName(id) {
    return this.due?.find((b) => b.id === id)?.name;
  }

  // -- acting ----------------------------------------------------------------------------------

  async markDone(stop) {
    await this.changeStop(stop, "done", { by: this.session.name });
  }

  async skip(stop, reason) {
    return this.changeStop(stop, "skip", { by: this.session.name, reason });
  }

  async changeStop(stop, action, body) {
    const route = this.route;
    if (!route || this.busyStops.has(stop.bin_id)) return false;
    this.busyStops.add(stop.bin_id);
    this.redrawStop(stop.bin_id);
    try {
      const changed = await api("POST", `/api/v1/routes/${route.id}/stops/${encodeURIComponent(stop.bin_id)}/${action}`, body);
      this.busyStops.delete(stop.bin_id);
      this.updateStop(route, changed);
      tr(this.announcer, `crew.stop.announce.${changed.status === "skipped" ? "skipped" : "done"}`, { place: this.bins.get(stop.bin_id)?.name || stop.bin_id });
      this.focusNext(stop.bin_id);
      return true;
    } catch (error) {
      this.busyStops.delete(stop.bin_id);
      if (error instanceof ApiError && error.status === 401) {
        this.onUnauthorized();
        return false;
      }
      this.notify("crew.error.action", { detail: error instanceof ApiError ? error.message : t("error.network") });
      // A 409 means someone else marked it meanwhile: show the stop as it now is.
      if (error instanceof ApiError && (error.status === 409 || error.status === 404)) await this.loadRoute();
      else this.redrawStop(stop.bin_id);
      return false;
    }
  }

  updateStop(route, changed) {
    const index = route.stops.findIndex((s) => s.bin_id === changed.bin_id);
    if (index < 0) return;
    route.stops[index] = changed;
    const statuses = route.stops.map((s) => s.status);
    route.status = statuses.every((s) => s !== "planned") ? "completed" : statuses.some((s) => s !== "planned") ? "in_progress" : "planned";
    if (this.route === route) this.renderRoute();
  }

  redrawStop(binId) {
    const stop = this.route?.stops.find((s) => s.bin_id === binId);
    const old = this.stopList.querySelector(`li[data-bin-id="${CSS.escape(binId)}"]`);
    if (stop && old) old.replaceWith(this.stopItem(stop));
  }

  // Keyboard users go on with the next stop still to collect.
  focusNext(binId) {
    const items = [...this.stopList.querySelectorAll("li[data-testid=stop]")];
    const from = items.findIndex((li) => li.dataset.binId === binId);
    const next = [...items.slice(from + 1), ...items.slice(0, from)].find((li) => li.dataset.status === "planned");
    (next?.querySelector("button") ?? items[from])?.focus({ preventScroll: false });
  }

  // Skip: one tap on a reason sends it (with the note, if any); "other" needs the note.
  skipDialog(stop) {
    const note = h("textarea", { id: "skip-note", name: "note", rows: "2", maxlength: "400" });
    const hint = h("p", { class: "error", role: "alert" });
    const form = h("form", { method: "dialog" });
    const dialog = h("dialog", { "data-testid": "skip-dialog", "aria-labelledby": "skip-title" }, form);
    const place = this.bins.get(stop.bin_id)?.name || stop.bin_id;
    form.append(
      h("h2", { id: "skip-title", i18n: "crew.skip.title" }),
      h("p", { class: "skip-place", text: place }),
      // The reasons first: the first one takes the focus, so a phone's keyboard stays shut
      // until someone wants to write a note.
      h("div", { class: "skip-reasons", role: "group", "data-i18n-label": "crew.skip.reasons", "aria-label": t("crew.skip.reasons") },
        ...SKIP_REASONS.map((reason) => h("button", {
          type: "submit", class: "big", value: reason, "data-skip-reason": reason, i18n: `crew.skip.reason.${reason}`,
        })),
      ),
      h("label", { for: "skip-note", i18n: "crew.skip.note" }),
      note,
      hint,
      h("div", { class: "dialog-buttons" },
        h("button", { type: "button", i18n: "dialog.cancel", onclick: () => dialog.close() }),
      ),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const reason = event.submitter?.value;
      if (!reason) return;
      const text = note.value.trim();
      if (reason === "other" && !text) {
        tr(hint, "crew.skip.need_note");
        note.focus();
        return;
      }
      const said = reason === "other" ? text : text ? `${t(`crew.skip.reason.${reason}`)}: ${text}` : t(`crew.skip.reason.${reason}`);
      for (const button of form.querySelectorAll("button")) button.disabled = true;
      const done = await this.skip(stop, said.slice(0, 500));
      if (done) dialog.close();
      else for (const button of form.querySelectorAll("button")) button.disabled = false;
    });
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      dialog.remove();
      this.stopList.querySelector(`li[data-bin-id="${CSS.escape(stop.bin_id)}"] button`)?.focus();
    });
    dialog.showModal();
  }

  async plan(depot) {
    if (this.planning.has(depot.id)) return;
    this.planning.add(depot.id);
    this.renderDepots();
    try {
      const plan = await api("POST", "/api/v1/routes/plan", { depot_id: depot.id, by: this.session.name });
      this.plans.set(depot.id, plan);
      if (depot.id === this.prefs.depot) this.loadRoute(); // the truck may have a new route
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) this.onUnauthorized();
      else this.notify("crew.error.plan", { detail: error instanceof ApiError ? error.message : t("error.network") });
    } finally {
      this.planning.delete(depot.id);
      this.renderDepots();
      // Back on the button, unless the focus went elsewhere while the planner worked.
      if (!document.activeElement || document.activeElement === document.body) {
        this.depotList.querySelector(`[data-depot-id="${CSS.escape(depot.id)}"] button`)?.focus();
      }
    }
  }
}

// -- helpers -------------------------------------------------------------------------------

function loadPrefs() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(STORE_KEY) || "{}") || {};
  } catch {
    saved = {};
  }
  const hours = Number(saved.hours);
  return {
    depot: typeof saved.depot === "string" && saved.depot ? saved.depot : null,
    truck: Number.isInteger(saved.truck) && saved.truck > 0 ? saved.truck : null,
    hours: Number.isFinite(hours) && hours >= 0 ? hours : DEFAULT_HOURS,
  };
}

function savePrefs(prefs) {
  localStorage.setItem(STORE_KEY, JSON.stringify(prefs));
}

// Midnight (WIB) of the day a moment falls on, in epoch ms.
function wibMidnight(moment) {
  const local = moment.getTime() + WIB_MS;
  return local - (local % (24 * 3600 * 1000)) - WIB_MS;
}

// The truck's routes for today, newest (highest id) first: those that start today in WIB
// or have not ended yet (a night shift from yesterday, a shift planned ahead).
export function todaysRoutes(routes, truck, now) {
  const today = wibMidnight(now);
  return routes
    .filter((r) => r.truck === truck)
    .filter((r) => wibMidnight(new Date(r.start_at)) === today || new Date(r.end_at) > now)
    .sort((a, b) => b.id - a.id);
}

// A <dl> of label/value pairs, each pair in a <div> so that they flow into columns; a
// third element "wide" lets a long value (a skip reason) take the whole row.
function facts(className, ...pairs) {
  return h("dl", { class: `fact-grid ${className}` },
    ...pairs.map(([key, value, wide]) => h("div", { class: wide ? "fact wide" : "fact" }, h("dt", { i18n: key }), value)),
  );
}

function hhmm(time) {
  return time ? String(time).slice(0, 5) : "";
}

function whoWhen(at, by) {
  return by ? `${formatTime(at)} · ${by}` : formatTime(at);
}

function pctCell(pct) {
  return pct == null ? h("dd", { i18n: "crew.unknown" }) : h("dd", { i18n: ["crew.pct", { pct: formatNumber(pct) }] });
}

// When a bin is (or was) predicted full: its latest reading plus the hours to full.
function fullAtCell(bin) {
  if (!bin || bin.hours_to_full == null) return h("dd", { i18n: bin?.level === "full" ? "crew.due.full_now" : "crew.unknown" });
  if (bin.hours_to_full === 0 || bin.level === "full") return h("dd", { i18n: "crew.due.full_now" });
  const from = bin.last_seen_at ? new Date(bin.last_seen_at).getTime() : Date.now();
  const at = new Date(from + bin.hours_to_full * 3600 * 1000).toISOString();
  return h("dd", { class: "full-at" },
    h("span", { text: formatTime(at), "data-time": at }), " ",
    h("span", { class: "muted", i18n: ["crew.in_hours", { hours: formatNumber(bin.hours_to_full, 1) }] }),
  );
}

function unservedReason(reason) {
  for (const [pattern, key, names] of UNSERVED) {
    const match = pattern.exec(reason);
    if (match) {
      const params = Object.fromEntries(names.map((name, i) => [name, formatNumber(Number(match[i + 1]), name === "hours" ? 1 : 0)]));
      return h("span", { class: "reason", i18n: [key, params] });
    }
  }
  return h("span", { class: "reason", text: reason });
}
