// Regional peat-fire haze as the rule engine estimates it (GET /api/v1/haze), for the
// dispatcher's strip and the map's district labels. One feed per signed-in console: it asks
// on a slow timer (the engine checks every 60 s) and whenever a haze.regional alert changes
// on the live stream, and tells its listeners which districts are under haze.
import { ApiError, api } from "./api.js";
import { h } from "./dom.js";
import { formatNumber, t } from "./i18n.js";

const REFRESH_MS = 60 * 1000;
// ISPU Tidak Sehat and worse: where the engine raises haze.regional (docs/rules.md "Haze").
const SHOWN_FROM_ISPU = 101;
const PREFIX = "haze:"; // a haze.regional alert's device id is haze:<region>

// The ISPU categories, best to worst, with the regulation's colours (contract/ispu.py;
// console.css has the same for the chips) and a text colour readable on each.
export const ISPU = [
  { id: "baik", upTo: 50, fill: "#34cc33", text: "#000000" },
  { id: "sedang", upTo: 100, fill: "#0070c0", text: "#ffffff" },
  { id: "tidak_sehat", upTo: 200, fill: "#ffc100", text: "#000000" },
  { id: "sangat_tidak_sehat", upTo: 300, fill: "#ff0000", text: "#000000" },
  { id: "berbahaya", upTo: Infinity, fill: "#000000", text: "#ffffff" },
];

export function ispuCategory(id) {
  return ISPU.find((c) => c.id === id) ?? null;
}

function categoryOfIndex(index) {
  return ISPU.find((c) => index <= c.upTo).id;
}

// One district under haze, from the engine's answer and/or its active alert.
//   {region, ispu, category, visibility_m, trend, source, stale}
// stale: the engine has no estimate for it now (too few detectors report), so the ISPU is
// the one its active alert was last raised or updated with.
export function hazyRegions(regions, alerts) {
  const alerted = new Map(
    alerts
      .filter((a) => a.kind === "haze.regional" && a.device_id.startsWith(PREFIX))
      .map((a) => [a.device_id.slice(PREFIX.length), a]),
  );
  const fromAlert = (region, alert) => {
    const ispu = Number.isFinite(alert.values?.ispu) ? Math.round(alert.values.ispu) : null;
    return { region, ispu, category: ispu === null ? null : categoryOfIndex(ispu), visibility_m: null, trend: null, source: null, stale: true };
  };
  const found = [];
  const named = new Set();
  for (const r of regions) {
    named.add(r.region);
    const alert = alerted.get(r.region);
    if (!((r.ispu ?? 0) >= SHOWN_FROM_ISPU || r.alert || alert)) continue;
    if (r.ispu === null && alert) found.push(fromAlert(r.region, alert));
    else found.push({ region: r.region, ispu: r.ispu, category: r.category, visibility_m: r.visibility_m, trend: r.trend, source: r.pm25_source, stale: false });
  }
  for (const [region, alert] of alerted) if (!named.has(region)) found.push(fromAlert(region, alert));
  // Worst first, then by name: the same order on every console.
  return found.sort((a, b) => (b.ispu ?? -1) - (a.ispu ?? -1) || (a.region < b.region ? -1 : a.region > b.region ? 1 : 0));
}

export class HazeFeed {
  constructor() {
    this.hazy = []; // what the listeners were last told
    this.status = "waiting"; // then "ok", or "unavailable" (no rule engine behind this API)
    this.listeners = new Set();
    this.timer = null;
    this.pending = null; // the request in flight
    this.again = false; // asked again while one was in flight
  }

  // fn(hazy, status) now and after every answer.
  subscribe(fn) {
    this.listeners.add(fn);
    fn(this.hazy, this.status);
  }

  start() {
    this.stop();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    this.refresh();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  // A haze.regional alert changed (or the stream reopened): ask the engine again. Calls
  // while a request is out are folded into one more request after it. Never throws.
  refresh() {
    if (this.pending) {
      this.again = true;
      return this.pending;
    }
    this.pending = (async () => {
      do {
        this.again = false;
        await this.load();
      } while (this.again && this.timer !== null);
    })().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  async load() {
    const [haze, alerts] = await Promise.all([
      api("GET", "/api/v1/haze").then(
        (regions) => ({ regions }),
        (error) => ({ error }),
      ),
      api("GET", "/api/v1/alerts?active=true&category=haze&limit=1000").catch(() => []),
    ]);
    if (this.timer === null) return; // signed out meanwhile
    if (haze.error) {
      // 503: this process runs no rule engine (an API-only worker), 404: an older server:
      // there is no haze to show, and nothing to report. Anything else (the network, a
      // signed-out session: the live stream reports those) keeps what is shown.
      if (!(haze.error instanceof ApiError && (haze.error.status === 503 || haze.error.status === 404))) return;
      this.publish([], "unavailable");
      return;
    }
    this.publish(hazyRegions(haze.regions, alerts), "ok");
  }

  publish(hazy, status) {
    this.hazy = hazy;
    this.status = status;
    for (const fn of this.listeners) fn(hazy, status);
  }
}

// A region's name for people: a district as registered, or a map cell by its corner.
export function regionName(region) {
  const cell = /^cell (-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)$/.exec(region);
  if (!cell) return { text: region };
  return { i18n: ["dispatch.haze.cell", { lat: formatNumber(Number(cell[1]), 2), lon: formatNumber(Number(cell[2]), 2) }] };
}

function regionElement(tag, attrs, region) {
  const name = regionName(region);
  return h(tag, { ...attrs, ...name });
}

function spaced(...parts) {
  return parts.filter(Boolean).flatMap((part, i) => (i ? [" ", part] : [part]));
}

// Visibility as a dispatcher would say it: to 50 m below a kilometre, then in km.
function visibility(m) {
  if (!Number.isFinite(m)) return null;
  if (m < 975) return ["dispatch.haze.visibility_m", { m: formatNumber(Math.max(50, Math.round(m / 50) * 50)) }];
  const km = m / 1000;
  return ["dispatch.haze.visibility_km", { km: formatNumber(km, km < 9.95 ? 1 : 0) }];
}

// The dispatcher's strip: one chip per district under haze, hidden when the air is clear.
export class HazeStrip {
  constructor(feed) {
    this.hazy = [];
    this.list = h("ul", { class: "haze-list" });
    this.root = h("section", { class: "haze-strip", "data-testid": "haze-strip", "aria-labelledby": "haze-title", hidden: true },
      h("h2", { id: "haze-title", class: "haze-title", i18n: "dispatch.haze.title" }),
      this.list,
      h("p", { class: "haze-note", i18n: "dispatch.haze.note" }),
    );
    feed?.subscribe((hazy, status) => {
      this.hazy = hazy;
      // For tests and people reading the DOM: waiting, clear, hazy or unavailable.
      this.root.dataset.haze = status === "ok" ? (hazy.length ? "hazy" : "clear") : status;
      this.render();
    });
  }

  // Also after a language switch: numbers are formatted per language.
  render() {
    this.root.hidden = !this.hazy.length;
    this.list.replaceChildren(...this.hazy.map((r) => this.chip(r)));
  }

  chip(r) {
    const category = ispuCategory(r.category);
    const seen = visibility(r.visibility_m);
    return h("li",
      {
        class: `haze-chip ispu-${category ? category.id : "unknown"}`,
        "data-testid": "haze-chip",
        "data-region": r.region,
        "data-category": r.category ?? "",
        "data-ispu": r.ispu ?? "",
      },
      // Spaces between the parts: the page's text (a screen reader, a copy) reads as words;
      // the dots between the details are the stylesheet's.
      ...spaced(
        h("span", { class: "haze-head" },
          ...spaced(
            regionElement("strong", { class: "haze-region" }, r.region),
            h("span", { class: "ispu-badge" },
              ...spaced(
                r.ispu === null
                  ? h("span", { i18n: "dispatch.haze.ispu_unknown" })
                  : h("span", { class: "ispu-index", i18n: ["dispatch.haze.ispu", { ispu: ispuText(r.ispu) }] }),
                category ? h("span", { class: "ispu-name", i18n: `ispu.${category.id}` }) : null,
              ),
            ),
          ),
        ),
        h("span", { class: "haze-details" },
          ...spaced(
            seen ? h("span", { class: "haze-part haze-visibility", i18n: seen }) : null,
            r.trend ? h("span", { class: `haze-part trend-${r.trend}`, i18n: `dispatch.haze.trend.${r.trend}` }) : null,
            r.source ? h("span", { class: "haze-part haze-source", i18n: `dispatch.haze.source.${r.source}` }) : null,
            r.stale ? h("span", { class: "haze-part haze-source", i18n: "dispatch.haze.stale" }) : null,
          ),
        ),
      ),
    );
  }
}

// The text of a district's label on the map while it is under haze (short: without the
// category's name, for a narrow map).
// The regulation's table ends at 500 (Berbahaya); beyond it the number says nothing more
// a dispatcher can use, and "1.107" reads like a typo.
export function ispuText(ispu) {
  return ispu === null ? "?" : ispu > 500 ? ">500" : formatNumber(ispu);
}

export function mapLabel(district, r, short = false) {
  const category = ispuCategory(r.category);
  return t(short ? "map.haze_label_short" : "map.haze_label", {
    district,
    ispu: ispuText(r.ispu),
    category: category ? t(`ispu.${category.id}`) : "",
  }).trim();
}
