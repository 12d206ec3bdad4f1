// A map drawn on a canvas: thousands of devices stay smooth (one path per style, no DOM
// node per device), it works with no tiles at all (a plain background, a scale bar and
// district labels from the registry), and draws XYZ tiles underneath when configured.
import { h } from "./dom.js";
import { formatNumber, t, tr } from "./i18n.js";

const TILE = 256;
const MAX_ZOOM = 19;
const MIN_ZOOM = 3;
// Sampit, when there is nothing to fit the view to yet.
const HOME = { lat: -2.5363, lon: 112.9511, zoom: 13 };

// Web Mercator in "world units" (0..1 across the world); pixels = units * 256 * 2^zoom.
function project(lat, lon) {
  const s = Math.sin((Math.max(-85, Math.min(85, lat)) * Math.PI) / 180);
  return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
}

function unproject(x, y) {
  const lon = x * 360 - 180;
  const lat = (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;
  return [lat, lon];
}

// How each state is drawn: colour AND shape, so colour is never the only cue. The legend
// draws the same symbols.
export const STATES = ["alarming", "full", "fault", "offline", "ok"];
const STYLE = {
  ok: { fill: "#2e7d32", stroke: "#ffffff", size: 4 },
  full: { fill: "#ef8f00", stroke: "#3b2500", size: 6, bar: true },
  fault: { fill: "#7b1fa2", stroke: "#ffffff", size: 6, cross: true },
  offline: { fill: "#ffffff", stroke: "#6b6b73", size: 5, dashed: true },
  alarming: { fill: "#d32f2f", stroke: "#ffffff", size: 9, mark: true },
};

export function drawSymbol(ctx, kind, state, x, y, scale = 1) {
  const style = STYLE[state] ?? STYLE.ok;
  const r = style.size * scale;
  ctx.beginPath();
  if (state === "alarming") {
    // A warning triangle, whatever the kind: the first thing the eye finds.
    ctx.moveTo(x, y - r * 1.25);
    ctx.lineTo(x + r * 1.1, y + r * 0.75);
    ctx.lineTo(x - r * 1.1, y + r * 0.75);
    ctx.closePath();
  } else if (kind === "bin") {
    ctx.rect(x - r, y - r, 2 * r, 2 * r);
  } else if (kind === "air") {
    // A diamond: an air-quality station, neither a detector (circle) nor a bin (square).
    const d = r * 1.35;
    ctx.moveTo(x, y - d);
    ctx.lineTo(x + d, y);
    ctx.lineTo(x, y + d);
    ctx.lineTo(x - d, y);
    ctx.closePath();
  } else if (kind === "fire_station" || kind === "waste_depot") {
    // A house: stations and depots are places, not sensors.
    ctx.moveTo(x, y - r * 1.2);
    ctx.lineTo(x + r, y - r * 0.2);
    ctx.lineTo(x + r, y + r);
    ctx.lineTo(x - r, y + r);
    ctx.lineTo(x - r, y - r * 0.2);
    ctx.closePath();
  } else {
    ctx.arc(x, y, r, 0, 2 * Math.PI);
  }
  ctx.fillStyle = kind === "fire_station" ? "#b3261e" : kind === "waste_depot" ? "#1a4fa0" : style.fill;
  ctx.fill();
  ctx.lineWidth = Math.max(1, 1.5 * scale);
  ctx.setLineDash(style.dashed ? [2, 2] : []);
  ctx.strokeStyle = kind === "fire_station" || kind === "waste_depot" ? "#ffffff" : style.stroke;
  ctx.stroke();
  ctx.setLineDash([]);
  if (style.mark) {
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(x - 1.2 * scale, y - r * 0.55, 2.4 * scale, r * 0.7);
    ctx.fillRect(x - 1.2 * scale, y + r * 0.3, 2.4 * scale, 2.2 * scale);
  }
  if (style.cross) {
    ctx.beginPath();
    ctx.moveTo(x - r * 0.6, y - r * 0.6);
    ctx.lineTo(x + r * 0.6, y + r * 0.6);
    ctx.moveTo(x + r * 0.6, y - r * 0.6);
    ctx.lineTo(x - r * 0.6, y + r * 0.6);
    ctx.strokeStyle = "#ffffff";
    ctx.stroke();
  }
  if (style.bar) {
    ctx.fillStyle = style.stroke;
    ctx.fillRect(x - r * 0.7, y - r * 0.6, r * 1.4, r * 0.35);
  }
}

export class MapCanvas {
  constructor({ tiles = null, onSelect = () => {}, label = "map.label" } = {}) {
    this.tiles = tiles;
    this.onSelect = onSelect;
    this.points = []; // {id, kind, state, x, y, ...data}
    this.places = []; // stations and depots
    this.labels = []; // {text, x, y}
    this.lines = []; // [[x, y], ...] world units: a route's path
    const [cx, cy] = project(HOME.lat, HOME.lon);
    this.view = { cx, cy, zoom: HOME.zoom };
    this.tileCache = new Map();
    this.pending = false;
    this.canvas = h("canvas", { class: "map-canvas", tabindex: "0", role: "img", "data-i18n-label": label, "aria-label": t(label) });
    this.scale = h("div", { class: "map-scale" }, h("span", { class: "bar" }), h("span", { class: "len" }));
    this.attribution = h("div", { class: "map-attribution" });
    if (tiles?.attribution) this.attribution.append(h("span", { text: tiles.attribution }));
    const zoomButton = (key, delta) =>
      h("button", { type: "button", class: "map-zoom", "data-i18n-label": key, "aria-label": t(key), i18n: `${key}_symbol`, onclick: () => this.zoomBy(delta) });
    this.zoomIn = zoomButton("map.zoom_in", 1);
    this.zoomOut = zoomButton("map.zoom_out", -1);
    this.root = h("div", { class: "map" }, this.canvas, h("div", { class: "map-controls" }, this.zoomIn, this.zoomOut), this.scale, this.attribution);
    this.bindInput();
    // Until someone pans or zooms, the view keeps fitting what is drawn (the canvas's size
    // settles after layout, a phone turns); after that it stays where they put it.
    this.following = true;
    new ResizeObserver(() => (this.following ? this.fit() : this.requestDraw())).observe(this.canvas);
  }

  // Devices: [{id, kind, lat, lon, state, ...}] (anything else is passed to onSelect).
  setPoints(points) {
    this.points = points
      .filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon))
      .map((p) => {
        const [x, y] = project(p.lat, p.lon);
        return { ...p, x, y };
      });
    this.byId = new Map(this.points.map((p) => [p.id, p])); // an alert's device at once
    this.requestDraw();
  }

  setPlaces(places) {
    this.places = places.map((p) => {
      const [x, y] = project(p.lat, p.lon);
      return { ...p, x, y };
    });
    this.requestDraw();
  }

  setLabels(labels) {
    this.labels = labels.map((l) => {
      const [x, y] = project(l.lat, l.lon);
      return { ...l, x, y };
    });
    this.requestDraw();
  }

  // A path (a route's LineString) as [[lon, lat], ...], GeoJSON order.
  setLines(lines) {
    this.lines = lines.map((line) => line.map(([lon, lat]) => project(lat, lon)));
    this.requestDraw();
  }

  setState(id, state) {
    const point = this.byId?.get(id);
    if (point && point.state !== state) {
      point.state = state;
      this.requestDraw();
    }
  }

  // Fit the view to everything drawn (with a margin); Sampit when there is nothing.
  fit() {
    const all = [...this.points, ...this.places, ...this.lines.flat().map(([x, y]) => ({ x, y }))];
    if (!all.length) {
      this.requestDraw();
      return;
    }
    const xs = all.map((p) => p.x);
    const ys = all.map((p) => p.y);
    const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const { width, height } = this.size();
    const span = Math.max(maxX - minX, (maxY - minY) * (width / Math.max(height, 1)), 1e-7);
    const zoom = Math.log2((width * 0.85) / (span * TILE));
    this.view.zoom = Math.max(MIN_ZOOM, Math.min(16, zoom));
    this.view.cx = (minX + maxX) / 2;
    this.view.cy = (minY + maxY) / 2;
    this.requestDraw();
  }

  // The canvas's size, measured once per frame (layout reads are not free: a read per
  // point cost 8 ms a frame at 10,000 devices).
  size() {
    if (!this.measured) {
      const rect = this.canvas.getBoundingClientRect();
      this.measured = { width: Math.max(1, rect.width), height: Math.max(1, rect.height) };
      queueMicrotask(() => {
        this.measured = null;
      });
    }
    return this.measured;
  }

  zoomBy(delta, at = null) {
    this.following = false;
    const { width, height } = this.size();
    const anchor = at ?? [width / 2, height / 2];
    const before = this.toWorld(...anchor);
    this.view.zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, this.view.zoom + delta));
    const after = this.toWorld(...anchor);
    this.view.cx += before[0] - after[0];
    this.view.cy += before[1] - after[1];
    this.requestDraw();
  }

  panBy(dx, dy) {
    this.following = false;
    const k = TILE * 2 ** this.view.zoom;
    this.view.cx -= dx / k;
    this.view.cy -= dy / k;
    this.requestDraw();
  }

  toScreen(x, y) {
    const { width, height } = this.size();
    const k = TILE * 2 ** this.view.zoom;
    return [(x - this.view.cx) * k + width / 2, (y - this.view.cy) * k + height / 2];
  }

  toWorld(sx, sy) {
    const { width, height } = this.size();
    const k = TILE * 2 ** this.view.zoom;
    return [(sx - width / 2) / k + this.view.cx, (sy - height / 2) / k + this.view.cy];
  }

  bindInput() {
    let drag = null;
    this.canvas.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, moved: false };
      this.canvas.setPointerCapture(e.pointerId);
    });
    this.canvas.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved) {
        this.panBy(dx, dy);
        drag.x = e.clientX;
        drag.y = e.clientY;
      }
    });
    this.canvas.addEventListener("pointerup", (e) => {
      const rect = this.canvas.getBoundingClientRect();
      if (drag && !drag.moved) this.click(e.clientX - rect.left, e.clientY - rect.top);
      drag = null;
    });
    this.canvas.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const rect = this.canvas.getBoundingClientRect();
        this.zoomBy(e.deltaY < 0 ? 0.5 : -0.5, [e.clientX - rect.left, e.clientY - rect.top]);
      },
      { passive: false },
    );
    this.canvas.addEventListener("keydown", (e) => {
      const step = 60;
      const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (moves[e.key]) this.panBy(...moves[e.key]);
      else if (e.key === "+" || e.key === "=") this.zoomBy(1);
      else if (e.key === "-") this.zoomBy(-1);
      else return;
      e.preventDefault();
    });
  }

  // The nearest device (or place) under a click, within a finger's width.
  click(sx, sy) {
    let best = null;
    let bestD = 16 * 16;
    for (const p of [...this.places, ...this.points]) {
      const [px, py] = this.toScreen(p.x, p.y);
      const d = (px - sx) ** 2 + (py - sy) ** 2;
      if (d < bestD) {
        best = p;
        bestD = d;
      }
    }
    const [lat, lon] = unproject(...this.toWorld(sx, sy));
    this.onSelect(best, { lat, lon });
  }

  requestDraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      // A map in a hidden tab is not drawn (an alert would cost a full redraw for nobody);
      // the ResizeObserver asks again when it is shown.
      if (!this.canvas.isConnected || this.canvas.getClientRects().length === 0) return;
      this.draw();
    });
  }

  draw() {
    const started = performance.now();
    const { width, height } = this.size();
    const ratio = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(width * ratio) || this.canvas.height !== Math.round(height * ratio)) {
      this.canvas.width = Math.round(width * ratio);
      this.canvas.height = Math.round(height * ratio);
    }
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = "#e9eef2";
    ctx.fillRect(0, 0, width, height);
    if (this.tiles?.url) this.drawTiles(ctx, width, height);
    this.drawLines(ctx);
    // Quiet devices first, then stations and depots, and the alarms last: on top of all.
    const byState = new Map(STATES.map((s) => [s, []]));
    for (const p of this.points) (byState.get(p.state) ?? byState.get("ok")).push(p);
    const scale = this.view.zoom >= 15 ? 1.4 : this.view.zoom <= 11 ? 0.7 : 1;
    const drawState = (state) => {
      for (const p of byState.get(state)) {
        const [x, y] = this.toScreen(p.x, p.y);
        if (x < -20 || y < -20 || x > width + 20 || y > height + 20) continue;
        drawSymbol(ctx, p.kind, state, x, y, state === "alarming" ? Math.max(scale, 1.2) : scale);
      }
    };
    for (const state of ["ok", "offline", "fault", "full"]) drawState(state);
    for (const p of this.places) {
      const [x, y] = this.toScreen(p.x, p.y);
      drawSymbol(ctx, p.kind, "ok", x, y, 1.8);
    }
    // A district under haze: its name boxed in the ISPU colour, under the alarms only.
    this.drawBoxedLabels(ctx);
    drawState("alarming");
    // District names over the devices, with a halo: they orient, they must stay readable.
    this.drawLabels(ctx);
    this.drawScale(width);
    // The draw time, for the console bench (bench/console.py): the last frame, in ms.
    this.canvas.dataset.drawMs = (performance.now() - started).toFixed(2);
    this.canvas.dataset.points = String(this.points.length);
    this.canvas.dataset.boxedLabels = String(this.labels.filter((l) => l.box).length);
  }

  drawTiles(ctx, width, height) {
    const z = Math.max(0, Math.min(MAX_ZOOM, Math.round(this.view.zoom)));
    const n = 2 ** z;
    const [x0, y0] = this.toWorld(0, 0);
    const [x1, y1] = this.toWorld(width, height);
    for (let tx = Math.floor(x0 * n); tx <= Math.floor(x1 * n); tx += 1) {
      for (let ty = Math.max(0, Math.floor(y0 * n)); ty <= Math.min(n - 1, Math.floor(y1 * n)); ty += 1) {
        const wrapped = ((tx % n) + n) % n;
        const url = this.tiles.url.replace("{z}", z).replace("{x}", wrapped).replace("{y}", ty);
        let image = this.tileCache.get(url);
        if (!image) {
          image = new Image();
          image.onload = () => this.requestDraw();
          image.src = url;
          this.tileCache.set(url, image);
        }
        if (image.complete && image.naturalWidth) {
          const [sx, sy] = this.toScreen(tx / n, ty / n);
          const [ex, ey] = this.toScreen((tx + 1) / n, (ty + 1) / n);
          ctx.drawImage(image, sx, sy, ex - sx + 0.5, ey - sy + 0.5);
        }
      }
    }
  }

  drawLines(ctx) {
    ctx.lineWidth = 4;
    ctx.strokeStyle = "#1a4fa0";
    ctx.lineJoin = "round";
    for (const line of this.lines) {
      ctx.beginPath();
      line.forEach(([x, y], i) => {
        const [sx, sy] = this.toScreen(x, y);
        if (i === 0) ctx.moveTo(sx, sy);
        else ctx.lineTo(sx, sy);
      });
      ctx.stroke();
    }
  }

  drawLabels(ctx) {
    ctx.font = "600 14px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.lineWidth = 4;
    ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
    ctx.fillStyle = "#3a3a44";
    for (const label of this.labels) {
      if (label.box) continue;
      const [x, y] = this.toScreen(label.x, label.y);
      const dy = label.dy ?? 0; // e.g. a stop's number just above its symbol
      ctx.strokeText(label.text, x, y + dy);
      ctx.fillText(label.text, x, y + dy);
    }
  }

  // Labels with a box ({fill, text} colours): just above their point, so that a device at
  // the point (a district's only one) stays in sight, and whole on the canvas while their
  // point is on it (a phone's map is narrower than a long district name with its haze).
  drawBoxedLabels(ctx) {
    ctx.font = "700 14px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const canvasWidth = this.size().width;
    for (const label of this.labels) {
      if (!label.box) continue;
      let [x, y] = this.toScreen(label.x, label.y);
      let text = label.text;
      let width = ctx.measureText(text).width + 16;
      if (label.short && width > canvasWidth - 8) {
        text = label.short;
        width = ctx.measureText(text).width + 16;
      }
      if (x >= 0 && x <= canvasWidth) x = Math.max(width / 2 + 4, Math.min(canvasWidth - width / 2 - 4, x));
      ctx.beginPath();
      ctx.roundRect(x - width / 2, y - 34, width, 24, 6);
      ctx.fillStyle = label.box.fill;
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
      ctx.fillStyle = label.box.text;
      ctx.fillText(text, x, y - 22);
    }
    ctx.textBaseline = "alphabetic";
  }

  // A scale bar of a round length (1, 2 or 5 x 10^n metres) about 100 px long.
  drawScale(width) {
    const [lat] = unproject(this.view.cx, this.view.cy);
    const metresPerPx = (40075016.686 * Math.cos((lat * Math.PI) / 180)) / (TILE * 2 ** this.view.zoom);
    const target = Math.min(120, width / 4) * metresPerPx;
    const base = 10 ** Math.floor(Math.log10(target));
    const metres = [5, 2, 1].map((m) => m * base).find((m) => m <= target) ?? base;
    this.scale.querySelector(".bar").style.width = `${metres / metresPerPx}px`;
    const len = this.scale.querySelector(".len");
    if (metres >= 1000) tr(len, "map.scale_km", { km: formatNumber(metres / 1000) });
    else tr(len, "map.scale_m", { m: formatNumber(metres) });
  }
}
