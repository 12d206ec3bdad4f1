// The map view: every registered device by kind and state, alerts on top, fire stations
// and depots, and the districts under haze; live from the alert stream. Click a device to
// see what it is and why.
import { api } from "./api.js";
import { h } from "./dom.js";
import { ISPU, ispuCategory, mapLabel } from "./haze.js";
import { formatNumber, has } from "./i18n.js";
import { MapCanvas, STATES, drawSymbol } from "./map.js";

const PAGE = 10000; // the registry's largest page

// A device's state from its active alerts: what needs people first.
export function stateOf(kinds) {
  if ([...kinds].some((k) => k.startsWith("fire.") || k === "bin.fire")) return "alarming";
  if (kinds.has("bin.full")) return "full";
  if (kinds.has("device.fault") || kinds.has("bin.tilted")) return "fault";
  if (kinds.has("device.offline")) return "offline";
  return "ok";
}

export class MapView {
  constructor({ session, haze }) {
    this.devices = new Map(); // id -> device
    this.active = new Map(); // device id -> Map(alert id -> kind)
    this.labels = []; // a label per district, from the registry
    this.hazy = new Map(); // district -> its haze (js/haze.js), while under haze
    this.map = new MapCanvas({ tiles: session.tiles, onSelect: (p) => this.select(p) });
    this.counts = h("ul", { class: "map-counts", "data-testid": "map-counts" });
    this.details = h("div", { class: "map-details", "aria-live": "polite" });
    this.root = h("section", { "data-testid": "view-map", class: "view view-map" },
      h("header", { class: "view-head" }, h("h1", { i18n: "map.title" }), this.counts),
      h("div", { class: "map-layout" }, this.map.root, h("aside", { class: "map-side" }, this.legend(), this.details)),
    );
    haze?.subscribe((hazy) => {
      // The feed answers every minute; the canvas is redrawn only when a label changes.
      const shown = JSON.stringify(hazy.map((r) => [r.region, r.ispu, r.category]));
      if (shown === this.hazyShown) return;
      this.hazyShown = shown;
      this.hazy = new Map(hazy.map((r) => [r.region, r]));
      this.drawLabels();
    });
  }

  legend() {
    const item = (kind, state, key) => {
      const swatch = h("canvas", { width: "28", height: "28", class: "swatch", "aria-hidden": "true" });
      const ctx = swatch.getContext("2d");
      drawSymbol(ctx, kind, state, 14, 15, 1.2);
      return h("li", {}, swatch, h("span", { i18n: key }));
    };
    return h("div", { class: "map-legend" },
      h("h2", { i18n: "map.legend" }),
      h("ul", {},
        item("fire", "ok", "map.kind.fire"),
        item("bin", "ok", "map.kind.bin"),
        item("air", "ok", "map.kind.air"),
        ...STATES.map((state) => item(state === "full" ? "bin" : "fire", state, `map.state.${state}`)),
        item("fire_station", "ok", "map.kind.fire_station"),
        item("waste_depot", "ok", "map.kind.waste_depot"),
        // A district under haze: its name on the ISPU colour of its category.
        h("li", {},
          h("span", { class: "swatch ispu-swatch", "aria-hidden": "true" },
            ...ISPU.filter((c) => c.upTo > 100).map((c) => h("span", { class: `ispu-${c.id}` }))),
          h("span", { i18n: "map.haze_legend" }),
        ),
      ),
    );
  }

  // The registry is the heaviest thing the console loads (about 440 bytes a device): only
  // when the map is on screen, or already loaded (then kept current).
  async reload() {
    if (this.root.hidden && !this.loaded) {
      this.stale = true;
      return;
    }
    this.stale = false;
    this.loaded = true;
    const devices = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await api("GET", `/api/v1/devices?limit=${PAGE}&offset=${offset}`);
      devices.push(...page);
      if (page.length < PAGE) break;
    }
    const [alerts, stations] = await Promise.all([
      api("GET", "/api/v1/alerts?active=true&limit=10000"),
      api("GET", "/api/v1/stations?limit=10000").catch(() => []),
    ]);
    this.devices = new Map(devices.filter((d) => d.status !== "retired").map((d) => [d.id, d]));
    this.active = new Map();
    for (const alert of alerts) this.track(alert);
    this.map.setPlaces(stations.map((s) => ({ ...s, place: true })));
    this.labels = districtLabels(this.devices.values());
    this.drawLabels();
    this.map.setPoints([...this.devices.values()].map((d) => ({ ...d, state: this.state(d.id) })));
    if (this.map.following) this.map.fit();
    this.renderCounts();
  }

  track(alert) {
    if (alert.category === "haze") return;
    const kinds = this.active.get(alert.device_id) ?? new Map();
    if (["open", "acknowledged", "dispatched"].includes(alert.status)) kinds.set(alert.id, alert.kind);
    else kinds.delete(alert.id);
    this.active.set(alert.device_id, kinds);
  }

  state(id) {
    return stateOf(new Set(this.active.get(id)?.values() ?? []));
  }

  apply(alert) {
    // A haze.regional alert is a district's (device id haze:<district>), not a device's:
    // the haze feed marks the district's label.
    if (alert.category === "haze") return;
    if (!this.loaded) return; // the first load reads the active alerts anyway
    this.track(alert);
    this.map.setState(alert.device_id, this.state(alert.device_id));
    this.renderCounts();
    if (this.selected?.id === alert.device_id) this.select(this.selected);
  }

  show() {
    if (this.stale || !this.loaded) this.reload();
    // A hidden canvas has no size: fit and draw once the view is on screen.
    requestAnimationFrame(() => (this.map.following ? this.map.fit() : this.map.requestDraw()));
  }

  redraw() {
    this.renderCounts();
    this.drawLabels(); // a hazy district's label is in words
    if (this.selected) this.select(this.selected);
  }

  // District names; those under haze on their ISPU colour, with the index and category.
  drawLabels() {
    this.map.setLabels(
      this.labels.map((label) => {
        const haze = this.hazy.get(label.text);
        if (!haze) return label;
        const category = ispuCategory(haze.category);
        return { ...label, text: mapLabel(label.text, haze), short: mapLabel(label.text, haze, true), box: category ? { fill: category.fill, text: category.text } : { fill: "#54545c", text: "#ffffff" } };
      }),
    );
  }

  renderCounts() {
    const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
    for (const id of this.devices.keys()) counts[this.state(id)] += 1;
    this.counts.replaceChildren(
      ...STATES.map((state) =>
        h("li", { "data-state": state, "data-count": counts[state] },
          h("span", { i18n: `map.state.${state}` }),
          h("strong", { text: formatNumber(counts[state]) }),
        ),
      ),
    );
  }

  select(point) {
    this.selected = point;
    if (!point) {
      this.details.replaceChildren();
      return;
    }
    if (point.place) {
      this.details.replaceChildren(
        h("h2", { text: point.name || point.id }),
        h("p", { i18n: `map.kind.${point.kind}` }),
        h("p", { class: "device-id", text: point.id }),
      );
      return;
    }
    const device = this.devices.get(point.id) ?? point;
    const state = this.state(point.id);
    const kinds = [...new Set(this.active.get(point.id)?.values() ?? [])];
    this.details.replaceChildren(
      h("h2", { text: device.name || device.id }),
      h("p", { class: `state state-${state}`, "data-testid": "map-selected-state", "data-state": state, i18n: `map.state.${state}` }),
      h("dl", { class: "facts" },
        h("dt", { i18n: "map.field.kind" }), h("dd", { i18n: `map.kind.${device.kind}` }),
        h("dt", { i18n: "alert.zone" }), device.zone ? h("dd", { text: device.zone }) : h("dd", { i18n: "alert.no_zone" }),
        h("dt", { i18n: "alert.district" }), h("dd", { text: device.district || "" }),
        h("dt", { i18n: "alert.device" }), h("dd", { class: "device-id", text: device.id }),
      ),
      kinds.length ? h("ul", { class: "kinds" }, ...kinds.map((k) => h("li", { i18n: has(`kind.${k}`) ? `kind.${k}` : "kind.unknown" }))) : null,
    );
  }
}

// A label per district, at the middle of its registered devices.
function districtLabels(devices) {
  const sums = new Map();
  for (const d of devices) {
    if (!d.district || !Number.isFinite(d.lat)) continue;
    const s = sums.get(d.district) ?? { lat: 0, lon: 0, n: 0 };
    s.lat += d.lat;
    s.lon += d.lon;
    s.n += 1;
    sums.set(d.district, s);
  }
  return [...sums].map(([text, s]) => ({ text, lat: s.lat / s.n, lon: s.lon / s.n }));
}
