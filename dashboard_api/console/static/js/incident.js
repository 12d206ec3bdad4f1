// An incident: the detectors that confirmed one fire, their temperature and smoke over
// the last hour (uPlot, vendored), and its CAP document. Opened as #incident/<id>.
import uPlot from "../vendor/uplot/dist/uPlot.esm.js";
import { api } from "./api.js";
import { h } from "./dom.js";
import { currentLang, formatTime, has, t, tr } from "./i18n.js";

const HOUR_MS = 3600 * 1000;
const REFRESH_MS = 15000; // charts while the page is open; alerts come live anyway
const COLOURS = ["#b3261e", "#1a4fa0", "#1e6b35", "#8a5300", "#6a1b9a", "#00696b", "#5d4037", "#37474f"];
// Each series also has its own dash, so lines differ without colour.
const DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [1, 6], [12, 6], [4, 4], [6, 2, 2, 2]];

export class IncidentView {
  constructor() {
    this.id = null;
    this.timer = null;
    this.charts = [];
    this.title = h("h1", {});
    this.summary = h("div", { class: "incident-summary" });
    this.members = h("ul", { class: "incident-members" });
    this.chartBox = h("div", { class: "incident-charts" });
    this.root = h("section", { "data-testid": "view-incident", class: "view" },
      h("p", {}, h("a", { href: "#dispatch", class: "back", i18n: "incident.back" })),
      this.title, this.summary, h("h2", { i18n: "incident.detectors" }), this.members,
      h("h2", { i18n: "incident.last_hour" }), this.chartBox,
    );
  }

  async reload() {
    if (this.id !== null && !this.root.hidden) await this.load();
  }

  show(args) {
    const id = Number(args?.[0]);
    if (!Number.isInteger(id)) return;
    this.id = id;
    this.load();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.loadCharts(), REFRESH_MS);
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
  }

  apply(alert) {
    if (this.id !== null && alert.incident_id === this.id && !this.root.hidden) this.loadIncident();
  }

  redraw() {
    if (this.incident) this.drawIncident();
    if (this.series) this.drawCharts();
  }

  async load() {
    await this.loadIncident();
    await this.loadCharts();
  }

  async loadIncident() {
    try {
      this.incident = await api("GET", `/api/v1/incidents/${this.id}`);
    } catch {
      this.incident = null;
      this.title.replaceChildren();
      tr(this.title, "incident.not_found", { id: this.id });
      return;
    }
    const devices = await Promise.all(
      this.incident.device_ids.map((id) => api("GET", `/api/v1/devices/${encodeURIComponent(id)}`).catch(() => ({ id }))),
    );
    this.devices = devices;
    this.drawIncident();
  }

  drawIncident() {
    const incident = this.incident;
    tr(this.title, "incident.title", { id: incident.id });
    this.summary.replaceChildren(
      h("p", { class: "kind" }, h("span", { i18n: has(`kind.${incident.kind}`) ? `kind.${incident.kind}` : "kind.unknown" })),
      h("dl", { class: "facts" },
        h("dt", { i18n: "incident.status" }),
        h("dd", { i18n: has(`incident.status.${incident.status}`) ? `incident.status.${incident.status}` : has(`status.${incident.status}`) ? `status.${incident.status}` : "incident.status.resolved" }),
        h("dt", { i18n: "alert.zone" }), incident.zone ? h("dd", { text: incident.zone }) : h("dd", { i18n: "alert.no_zone" }),
        h("dt", { i18n: "incident.opened" }), h("dd", { text: formatTime(incident.opened_at) }),
      ),
      h("p", {},
        h("a", { href: `/api/v1/incidents/${incident.id}/cap`, "data-testid": "cap-link", target: "_blank", rel: "noopener", i18n: "incident.cap" }),
      ),
    );
    this.members.replaceChildren(
      ...this.devices.map((d, i) =>
        h("li", { "data-device-id": d.id },
          h("span", { class: "series-key", style: `border-color: ${COLOURS[i % COLOURS.length]}; border-style: ${DASHES[i % DASHES.length].length ? "dashed" : "solid"}` }),
          h("strong", { text: d.name || d.id }),
          h("span", { class: "device-id", text: d.id }),
        ),
      ),
    );
  }

  async loadCharts() {
    if (!this.incident) return;
    const now = Date.now();
    const since = new Date(now - HOUR_MS).toISOString();
    // The axis spans the whole hour, whatever the readings cover (one reading is a dot).
    this.window = [(now - HOUR_MS) / 1000, now / 1000];
    const readings = await Promise.all(
      this.incident.device_ids.map((id) =>
        api("GET", `/api/v1/devices/${encodeURIComponent(id)}/readings?since=${encodeURIComponent(since)}&limit=10000`).catch(() => []),
      ),
    );
    this.series = readings.map((rows) => rows.slice().reverse()); // oldest first
    this.drawCharts();
  }

  drawCharts() {
    for (const chart of this.charts) chart.destroy();
    this.charts = [];
    this.chartBox.replaceChildren();
    for (const [field, key] of [["temp_c", "incident.chart.temp"], ["smoke_obs_pct_m", "incident.chart.smoke"]]) {
      const box = h("figure", { class: "chart", "data-field": field }, h("figcaption", { i18n: key }));
      this.chartBox.append(box);
      this.charts.push(this.chart(box, field, t(key)));
    }
  }

  // One chart: a series per detector, on a shared time axis (uPlot wants aligned x values).
  chart(box, field, label) {
    const times = [...new Set(this.series.flatMap((rows) => rows.filter((r) => r[field] != null).map((r) => Date.parse(r.ts) / 1000)))].sort((a, b) => a - b);
    const index = new Map(times.map((time, i) => [time, i]));
    const columns = this.series.map((rows) => {
      const column = new Array(times.length).fill(null);
      for (const r of rows) if (r[field] != null) column[index.get(Date.parse(r.ts) / 1000)] = r[field];
      return column;
    });
    box.dataset.points = String(columns.reduce((n, c) => n + c.filter((v) => v !== null).length, 0));
    const width = Math.max(280, Math.min(box.getBoundingClientRect().width || 600, 1600));
    const locale = currentLang() === "id" ? "id-ID" : "en-GB";
    const clock = new Intl.DateTimeFormat(locale, { timeZone: "Asia/Jakarta", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    return new uPlot(
      {
        width,
        height: 240,
        legend: { show: false }, // our own legend above: its text is catalogue and data
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true, range: () => this.window } },
        axes: [
          { values: (_u, ticks) => ticks.map((s) => `${clock.format(new Date(s * 1000))}`), label: t("time.zone") },
          { label },
        ],
        series: [
          {},
          ...this.series.map((_rows, i) => ({
            label: this.devices[i]?.name || this.incident.device_ids[i],
            stroke: COLOURS[i % COLOURS.length],
            dash: DASHES[i % DASHES.length],
            width: 2,
            spanGaps: true,
          })),
        ],
      },
      [times, ...columns],
      box,
    );
  }
}
