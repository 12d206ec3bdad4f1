// The field technician's view: find a device and open its page, register a device (the
// API's own validation messages beside their fields), import a fleet from a CSV file,
// issue a device's MQTT login (shown once), and watch a device's readings, battery and
// signal arrive live: the first-contact check on a roof.
import { ApiError, api } from "./api.js";
import { h } from "./dom.js";
import { MapCanvas } from "./map.js";
import { formatNumber, formatTime, t, tr } from "./i18n.js";

const POLL_MS = 2000; // the device page asks the API this often while it is shown
const LIST_LIMIT = 1000; // devices fetched for the search list (filtered in the page)
const LIST_SHOWN = 50; // rows drawn at once; typing narrows them
const REJECTED_SHOWN = 3;
const IMPORT_COLUMNS = ["id", "kind", "name", "lat", "lon", "district", "zone", "depth_mm", "gateway_id", "reporting_interval_s"];

// POST /devices fields in form order: the everyday ones, then the rest under "more".
const MAIN_FIELDS = ["id", "kind", "name", "lat", "lon", "district", "zone", "depth_mm", "gateway_id", "reporting_interval_s"];
const MORE_FIELDS = ["model", "address", "install_date", "status", "rule_class", "sensor_offsets", "thresholds", "network_server", "ns_device_id", "profile", "field_map"];
const FIELDS = new Set([...MAIN_FIELDS, ...MORE_FIELDS]);
const NUMBER_FIELDS = new Set(["lat", "lon", "depth_mm", "reporting_interval_s"]);
const JSON_FIELDS = new Set(["sensor_offsets", "thresholds", "field_map"]);
const REQUIRED_FIELDS = new Set(["id", "kind", "lat", "lon"]);
const SELECTS = {
  status: ["active", "maintenance", "retired"],
  network_server: ["", "tts", "chirpstack"],
  profile: [""], // and the installed profiles that fit the kind (GET /profiles, renderProfiles)
};
// contract/readings.py DeviceKind, in the order the form offers them (the first is chosen).
const KINDS = ["fire", "bin", "air"];
const HELP = new Set(["id", "depth_mm", "gateway_id", "reporting_interval_s", "sensor_offsets", "thresholds", "field_map", "ns_device_id", "profile"]);

// contract/readings.py QUANTITIES in the order a device page lists them (particles before
// CO: an air-quality station's PM2.5 first), with the decimals each is shown with (CO to
// 0.1 ppm: the ISPU's "good" limit is 3.5 ppm); battery and signal have tiles of their own.
// Units are in the catalogue (tech.unit.*), as UNITS has them.
const DIGITS = {
  temp_c: 1, smoke_obs_pct_m: 2, pm25_ugm3: 0, pm10_ugm3: 0, co_ppm: 1, humidity_pct: 0,
  fill_pct: 0, distance_mm: 0, tilt_deg: 0, battery_v: 2, battery_pct: 0, rssi_dbm: 0,
};
const CONDITION = new Set(["battery_v", "battery_pct", "rssi_dbm"]);
// contract/alerts.py ALERT_KINDS: each has its tech.alert.<kind> message.
const ALERT_KINDS = new Set([
  "fire.pre_alarm", "fire.alarm", "fire.confirmed", "bin.nearly_full", "bin.full", "bin.fire",
  "bin.tilted", "device.battery_low", "device.offline", "device.fault", "haze.regional",
]);

export class TechnicianView {
  constructor({ session, canAct, notify, onUnauthorized }) {
    this.session = session;
    this.canAct = canAct;
    this.notify = notify;
    this.onUnauthorized = onUnauthorized;
    this.devices = []; // the search list, as GET /devices returned it
    this.listState = "loading"; // loading | ready | failed
    this.listLoaded = false;
    this.gatewaysLoaded = false;
    this.profiles = []; // GET /profiles: the register form's choices, named on a device page
    this.profilesState = "loading"; // loading | ready | failed
    this.profilesLoaded = false;
    this.profilesLoading = false;
    this.active = false; // the tab is shown
    this.current = null; // the open device page's state
    this.timer = null;
    this.csvFile = null;
    this.typed = null; // an id typed in the search box, on its way through the address
    this.importResult = null;
    this.acting = canAct();

    this.root = h("section", { "data-testid": "view-devices", class: "view tech" });
    this.count = h("p", { class: "count", "aria-live": "polite" });
    this.home = h("div", { class: "tech-home" }, this.findCard());
    if (this.acting) this.home.append(this.registerCard(), this.importCard());
    else this.home.append(h("p", { class: "help tech-readonly", i18n: "tech.readonly" }));
    this.page = h("div", { class: "tech-page-holder", hidden: true });
    this.root.append(
      h("header", { class: "view-head" }, h("h1", { i18n: "tech.title" }), this.count),
      this.home,
      this.page,
    );
    document.addEventListener("visibilitychange", () => {
      if (!this.root.isConnected) return;
      if (document.hidden) clearTimeout(this.timer);
      else if (this.active && this.current) this.poll();
    });
  }

  // ---- the view contract (app.js) ----

  async reload() {
    // Never throws: app.js waits for every view's reload before it reads the live stream.
    // Nothing to catch up on before the view was first opened: show() loads it then.
    if (!this.active && !this.listLoaded) return;
    await Promise.all([this.loadList(), this.current ? this.poll() : null, this.current ? this.loadAlerts() : null]);
  }

  apply(alert) {
    if (this.current && alert.device_id === this.current.id) this.loadAlerts();
  }

  redraw() {
    this.renderList();
    if (this.importResult) this.renderImport(this.importResult);
    if (this.current?.device) this.renderDevice();
    if (this.form) this.syncProfile();
  }

  // #devices shows the list, #devices/<id> a device's page (app.js passes the parts after
  // the view id; called again whenever the hash changes).
  show(args = []) {
    this.active = true;
    if (!this.listLoaded) this.loadList();
    if (this.acting && !this.gatewaysLoaded) this.loadGateways();
    if (!this.profilesLoaded) this.loadProfiles(); // any role: a device page names its profile
    let id = null;
    try {
      id = args.length ? decodeURIComponent(args.join("/")) : null;
    } catch {
      id = null;
    }
    if (id && id !== this.current?.id) this.openDevice(id, id === this.typed);
    else if (!id && this.current) this.closeDevice(true);
    else if (this.current) this.poll();
    this.typed = null;
  }

  // Pages are addresses, so the browser's back button and a bookmark work.
  go(id, typed = false) {
    const target = id ? `#devices/${encodeURIComponent(id)}` : "#devices";
    this.typed = typed ? id : null;
    if (location.hash === target) this.show(id ? [encodeURIComponent(id)] : []);
    else location.hash = target;
  }

  hide() {
    this.active = false;
    clearTimeout(this.timer);
    this.forgetCredentials(); // leaving the tab is leaving the page: the password goes
  }

  // A click on the location map fills the register form's coordinates; typed coordinates
  // reach the map as a `location-input` event ({detail: {lat, lon}}) on `.location-map`.
  setLocation(lat, lon) {
    this.input("lat").value = String(Number(lat).toFixed(6));
    this.input("lon").value = String(Number(lon).toFixed(6));
    for (const name of ["lat", "lon"]) this.clearFieldError(name);
  }

  // The device-to-be as a marker on the location map (the view follows it).
  markLocation(lat, lon) {
    if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return;
    this.picker.setPoints([{ id: "new", kind: this.kind(), lat, lon, state: "ok" }]);
    if (this.picker.following) this.picker.fit();
  }

  // ---- find a device ----

  findCard() {
    this.query = h("input", { id: "tech-find-q", name: "q", type: "search", autocomplete: "off", spellcheck: "false", "aria-describedby": "tech-find-help" });
    this.kindFilter = h("select", { id: "tech-find-kind", name: "kind" },
      h("option", { value: "", i18n: "tech.find.all_kinds" }),
      ...KINDS.map((kind) => h("option", { value: kind, i18n: `tech.kind.${kind}` })),
    );
    this.listNote = h("p", { class: "help", "aria-live": "polite" });
    this.list = h("ul", { class: "tech-device-list", "data-testid": "device-list" });
    this.query.addEventListener("input", () => this.renderList());
    this.kindFilter.addEventListener("change", () => this.loadList());
    const form = h("form", { class: "tech-find-form", role: "search", "data-testid": "device-search" },
      h("div", { class: "tech-field" },
        h("label", { for: "tech-find-q", i18n: "tech.find.query" }),
        this.query,
        h("p", { id: "tech-find-help", class: "help", i18n: "tech.find.help" }),
      ),
      h("div", { class: "tech-field" }, h("label", { for: "tech-find-kind", i18n: "tech.find.kind" }), this.kindFilter),
      h("button", { type: "submit", class: "primary", i18n: "tech.find.open" }),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.openTyped();
    });
    return h("section", { class: "card tech-card tech-find", "aria-labelledby": "tech-find-title" },
      h("h2", { id: "tech-find-title", i18n: "tech.find.title" }),
      form,
      this.listNote,
      this.list,
    );
  }

  async loadList() {
    const params = new URLSearchParams({ limit: String(LIST_LIMIT) });
    if (this.kindFilter.value) params.set("kind", this.kindFilter.value);
    try {
      this.devices = await api("GET", `/api/v1/devices?${params}`);
      this.listState = "ready";
      this.listLoaded = true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return this.onUnauthorized();
      this.listState = "failed";
    }
    this.renderList();
  }

  matches() {
    const words = this.query.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    return this.devices.filter((d) => {
      const text = [d.id, d.name, d.district, d.zone, d.address, d.gateway_id].filter(Boolean).join(" ").toLowerCase();
      return words.every((word) => text.includes(word));
    });
  }

  renderList() {
    tr(this.count, "tech.count", { count: formatNumber(this.devices.length) });
    if (this.listState !== "ready") {
      tr(this.listNote, this.listState === "failed" ? "tech.find.failed" : "tech.find.loading");
      this.list.replaceChildren();
      return;
    }
    const found = this.matches();
    const shown = found.slice(0, LIST_SHOWN);
    if (!found.length) tr(this.listNote, this.devices.length ? "tech.find.none" : "tech.find.empty");
    else if (this.devices.length >= LIST_LIMIT) tr(this.listNote, "tech.find.shown_capped", { shown: formatNumber(shown.length), total: formatNumber(found.length) });
    else tr(this.listNote, "tech.find.shown", { shown: formatNumber(shown.length), total: formatNumber(found.length) });
    this.list.replaceChildren(...shown.map((device) => this.deviceRow(device)));
  }

  deviceRow(device) {
    return h("li", {},
      h("button", { type: "button", class: "tech-device-row", "data-device-id": device.id, onclick: () => this.go(device.id) },
        h("span", { class: "tech-row-name", text: device.name || device.id }),
        device.name ? h("span", { class: "tech-row-id", text: device.id }) : null,
        h("span", { class: "tech-row-meta" },
          h("span", { class: "chip", i18n: `tech.kind.${device.kind}` }),
          statusChip(device.status),
          device.district ? h("span", { text: device.district }) : null,
        ),
        device.last_seen_at
          ? h("span", { class: "tech-row-seen" }, h("span", { i18n: "tech.find.seen" }), h("span", { text: formatTime(device.last_seen_at) }))
          : h("span", { class: "tech-row-seen", i18n: "tech.page.never" }),
      ),
    );
  }

  // The search box's text as an id: open it, even if the list (first 1000) does not hold it.
  openTyped() {
    const typed = this.query.value.trim();
    if (!typed) return;
    const exact = this.devices.find((d) => d.id === typed);
    const found = this.matches();
    if (exact) this.go(exact.id);
    else if (found.length === 1) this.go(found[0].id);
    else if (found.length > 1) this.list.querySelector("button")?.focus();
    else this.go(typed, true); // not in the list (it holds the first 1000): ask the API
  }

  // ---- register a device ----

  registerCard() {
    this.summary = h("div", { class: "tech-summary", "data-testid": "register-summary", role: "alert", tabindex: "-1", hidden: true });
    this.submit = h("button", { type: "submit", class: "primary", "data-action": "register", i18n: "tech.register.submit" });
    this.map = h("div", { class: "location-map", "data-testid": "location-map" });
    // Click the map to place the device; typed coordinates move the marker there.
    this.picker = new MapCanvas({
      label: "tech.register.location_map",
      onSelect: (_point, at) => {
        this.setLocation(at.lat, at.lon);
        this.markLocation(at.lat, at.lon);
      },
    });
    this.map.append(this.picker.root);
    this.map.addEventListener("location-input", (e) => this.markLocation(e.detail.lat, e.detail.lon));
    this.more = h("details", { class: "tech-more" },
      h("summary", { i18n: "tech.register.more" }),
      h("div", { class: "tech-fields" }, ...MORE_FIELDS.map((name) => this.field(name))),
    );
    this.form = h("form", { class: "tech-register", "data-testid": "register-form", novalidate: true, "aria-labelledby": "tech-register-title" },
      this.summary,
      h("div", { class: "tech-fields" }, this.field("id"), this.field("name")),
      this.kindField(),
      h("fieldset", { class: "tech-location" },
        h("legend", { i18n: "tech.register.location" }),
        h("p", { class: "help", i18n: "tech.register.location_help" }),
        h("div", { class: "tech-fields" }, this.field("lat"), this.field("lon")),
        this.map,
        h("div", { class: "tech-fields" }, this.field("district"), this.field("zone")),
      ),
      h("div", { class: "tech-fields" }, this.field("depth_mm"), this.field("gateway_id"), this.field("reporting_interval_s")),
      this.more,
      h("datalist", { id: "tech-gateways" }),
      h("div", { class: "tech-buttons" }, this.submit),
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.register();
    });
    this.form.addEventListener("change", (event) => {
      if (event.target.name === "kind") this.syncKind();
      if (event.target.name === "profile") this.syncProfile();
    });
    for (const name of ["lat", "lon"]) this.input(name).addEventListener("input", () => this.typedLocation());
    this.syncKind();
    return h("section", { class: "card tech-card tech-register-card", "aria-labelledby": "tech-register-title" },
      h("h2", { id: "tech-register-title", i18n: "tech.register.title" }),
      h("p", { class: "help", i18n: "tech.register.help" }),
      this.form,
    );
  }

  field(name) {
    const id = `tech-reg-${name}`;
    const described = [`${id}-error`];
    let control;
    if (SELECTS[name]) {
      control = h("select", { id, name },
        ...SELECTS[name].map((value) => h("option", { value, i18n: value ? `tech.${name}.${value}` : `tech.${name}.none` })),
      );
    } else if (JSON_FIELDS.has(name)) {
      control = h("textarea", { id, name, rows: "2", spellcheck: "false", autocomplete: "off" });
    } else {
      control = h("input", {
        id,
        name,
        type: name === "install_date" ? "date" : "text",
        inputmode: NUMBER_FIELDS.has(name) ? "decimal" : undefined,
        autocomplete: "off",
        spellcheck: "false",
        list: name === "gateway_id" ? "tech-gateways" : undefined,
        "aria-required": REQUIRED_FIELDS.has(name) ? "true" : undefined,
      });
    }
    const help = HELP.has(name) ? h("p", { id: `${id}-help`, class: "help", i18n: `tech.help.${name}` }) : null;
    if (help) described.unshift(help.id);
    // The profiles could not be loaded: said under the select (only "no profile" is in it).
    const note = name === "profile" ? h("p", { id: `${id}-note`, class: "help tech-profile-note", "data-testid": "profile-note", i18n: "tech.profile.failed", hidden: true }) : null;
    if (note) described.splice(help ? 1 : 0, 0, note.id);
    control.setAttribute("aria-describedby", described.join(" "));
    return h("div", { class: `tech-field tech-field-${name}`, "data-field": name },
      h("label", { for: id },
        h("span", { i18n: `tech.field.${name}` }),
        REQUIRED_FIELDS.has(name) ? h("span", { class: "tech-required", i18n: "tech.form.required" }) : null,
      ),
      control,
      help,
      note,
      h("div", { id: `${id}-error`, class: "tech-field-error", "data-error-for": name }),
    );
  }

  kindField() {
    const choice = (value, checked) =>
      h("label", { class: "tech-kind-choice" },
        h("input", { type: "radio", name: "kind", value, checked, "aria-describedby": value === "air" ? "tech-reg-kind-help tech-reg-kind-error" : "tech-reg-kind-error" }),
        h("span", { i18n: `tech.kind.${value}` }),
      );
    // What the chosen kind must send, for the kinds whose readings are not obvious.
    this.kindHelp = h("p", { id: "tech-reg-kind-help", class: "help", "data-testid": "kind-help", i18n: "tech.kind.air_help", hidden: true });
    return h("fieldset", { class: "tech-field tech-kind", "data-field": "kind" },
      h("legend", {}, h("span", { i18n: "tech.field.kind" }), h("span", { class: "tech-required", i18n: "tech.form.required" })),
      h("div", { class: "tech-kind-choices" }, ...KINDS.map((kind, i) => choice(kind, i === 0))),
      this.kindHelp,
      h("div", { id: "tech-reg-kind-error", class: "tech-field-error", "data-error-for": "kind" }),
    );
  }

  input(name) {
    return this.form.elements.namedItem(name);
  }

  kind() {
    return this.form.elements.namedItem("kind").value;
  }

  // depth_mm belongs to bins only: shown (and sent) only when the kind is bin. An
  // air-quality station gets a line on what it reports.
  syncKind() {
    const kind = this.kind();
    const isBin = kind === "bin";
    this.form.querySelector(".tech-field-depth_mm").hidden = !isBin;
    if (!isBin) this.clearFieldError("depth_mm");
    this.kindHelp.hidden = kind !== "air";
    this.renderProfiles();
  }

  // The profile select: "no profile", then the installed profiles for any kind or for the
  // kind chosen ("Vendor Model", data: vendor names are not translated). A choice that no
  // longer fits the kind is dropped.
  renderProfiles() {
    const select = this.input("profile");
    const kind = this.kind();
    const chosen = select.value;
    const fitting = this.profiles.filter((p) => p.kind == null || p.kind === kind);
    select.replaceChildren(
      h("option", { value: "", i18n: "tech.profile.none" }),
      ...fitting.map((p) => h("option", { value: p.id, text: profileName(p) })),
    );
    select.value = fitting.some((p) => p.id === chosen) ? chosen : "";
    this.form.querySelector("[data-testid=profile-note]").hidden = this.profilesState !== "failed";
    this.syncProfile();
  }

  // The chosen profile's reporting interval as the empty field's placeholder: the API takes
  // it as the device's default, so the value is not filled in. The bare number ("1200", no
  // thousands dot): what the field takes if typed.
  syncProfile() {
    const profile = this.profiles.find((p) => p.id === this.input("profile").value);
    const interval = this.input("reporting_interval_s");
    if (profile?.reporting_interval_s != null) {
      interval.placeholder = t("tech.profile.interval", { seconds: String(profile.reporting_interval_s) });
    } else {
      interval.removeAttribute("placeholder");
    }
  }

  typedLocation() {
    const lat = toNumber(this.input("lat").value.trim());
    const lon = toNumber(this.input("lon").value.trim());
    if (typeof lat === "number" && typeof lon === "number") {
      this.map.dispatchEvent(new CustomEvent("location-input", { detail: { lat, lon } }));
    }
  }

  // The body as typed: no checks here, the API is the one judge (its answers are shown).
  body() {
    const body = { kind: this.kind() };
    for (const name of FIELDS) {
      if (name === "kind" || (name === "depth_mm" && body.kind !== "bin")) continue;
      const raw = this.input(name).value.trim();
      if (raw === "") continue;
      if (NUMBER_FIELDS.has(name)) body[name] = toNumber(raw);
      else if (JSON_FIELDS.has(name)) body[name] = toJson(raw);
      else body[name] = raw;
    }
    return body;
  }

  async register() {
    this.clearErrors();
    this.submit.disabled = true;
    tr(this.submit, "tech.register.busy");
    try {
      const device = await api("POST", "/api/v1/devices", this.body());
      this.form.reset();
      this.syncKind(); // the profiles for the first kind again, and no placeholder
      this.more.open = false;
      this.notify("tech.register.done", { id: device.id });
      this.loadList();
      this.go(device.id);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) this.onUnauthorized();
      else if (error instanceof ApiError && (error.status === 422 || error.status === 409)) this.showErrors(problems(error.status, error.detail));
      else if (error instanceof ApiError) this.showErrors([{ field: null, message: error.message }]);
      else this.showErrors([{ field: null, key: "tech.error.network" }]);
    } finally {
      this.submit.disabled = false;
      tr(this.submit, "tech.register.submit");
    }
  }

  clearFieldError(name) {
    const holder = this.form.querySelector(`[data-error-for="${name}"]`);
    holder?.replaceChildren();
    for (const control of this.form.querySelectorAll(`[name="${name}"]`)) control.removeAttribute("aria-invalid");
  }

  clearErrors() {
    for (const name of FIELDS) this.clearFieldError(name);
    this.summary.hidden = true;
    this.summary.replaceChildren();
  }

  // Each message beside its field, introduced in the page's language; all of them, and
  // those that name no field, in a summary at the top.
  showErrors(errors) {
    const items = [];
    for (const { field, message, key } of errors) {
      const text = key ? h("span", { i18n: key }) : h("span", { class: "tech-server-text", text: message });
      const holder = field ? this.form.querySelector(`[data-error-for="${field}"]`) : null;
      if (holder) {
        if (!holder.childElementCount) holder.append(h("span", { class: "tech-check", i18n: "tech.form.check" }));
        holder.append(h("span", { class: "tech-server-text", text: message }));
        for (const control of this.form.querySelectorAll(`[name="${field}"]`)) control.setAttribute("aria-invalid", "true");
        if (MORE_FIELDS.includes(field)) this.more.open = true;
        items.push(h("li", {},
          h("button", { type: "button", class: "tech-jump", onclick: () => this.focusField(field) }, h("span", { i18n: `tech.field.${field}` })),
          h("span", { class: "tech-server-text", text: message }),
        ));
      } else {
        items.push(h("li", {}, text));
      }
    }
    this.summary.replaceChildren(
      h("p", { class: "tech-summary-head", i18n: ["tech.form.summary", { count: formatNumber(errors.length) }] }),
      h("ul", {}, ...items),
    );
    this.summary.hidden = false;
    this.summary.focus();
  }

  focusField(name) {
    const controls = [...this.form.querySelectorAll(`[name="${name}"]`)];
    (controls.find((c) => c.checked) ?? controls[0])?.focus();
  }

  async loadGateways() {
    try {
      const gateways = await api("GET", "/api/v1/gateways?limit=1000");
      const list = this.form.querySelector("#tech-gateways");
      list.replaceChildren(...gateways.filter((g) => g.status !== "retired").map((g) => h("option", { value: g.id, label: g.name || g.id })));
      this.gatewaysLoaded = true;
    } catch {
      // Suggestions only: the field takes any id, and the API says if it does not fit.
    }
  }

  // Once per page load (again on the next show if it failed): the register form's select
  // and a device page's profile row. Without them the form still registers, with no profile.
  async loadProfiles() {
    if (this.profilesLoading) return;
    this.profilesLoading = true;
    try {
      const answer = await api("GET", "/api/v1/profiles");
      this.profiles = Array.isArray(answer?.profiles) ? answer.profiles : [];
      this.profilesState = "ready";
      this.profilesLoaded = true;
    } catch {
      this.profilesState = "failed";
    } finally {
      this.profilesLoading = false;
    }
    if (this.form) this.renderProfiles();
    if (this.current?.device) this.renderFacts(this.current.device);
  }

  // ---- import a CSV file ----

  importCard() {
    this.fileInput = h("input", { id: "tech-csv", name: "file", type: "file", accept: ".csv,text/csv", class: "tech-file" });
    this.fileName = h("p", { class: "tech-file-name", "aria-live": "polite" });
    this.importButton = h("button", { type: "button", class: "primary", "data-action": "import", i18n: "tech.import.submit", onclick: () => this.importCsv() });
    this.importReport = h("div", { class: "tech-import-report", "data-testid": "import-report", "aria-live": "polite" });
    this.fileInput.addEventListener("change", () => this.chooseFile(this.fileInput.files[0]));
    const drop = h("div", { class: "tech-drop" },
      this.fileInput,
      h("label", { for: "tech-csv", class: "tech-file-button", i18n: "tech.import.choose" }),
      h("p", { class: "help", i18n: "tech.import.drop" }),
      this.fileName,
    );
    for (const type of ["dragenter", "dragover"]) {
      drop.addEventListener(type, (event) => {
        event.preventDefault();
        drop.classList.add("tech-dragging");
      });
    }
    drop.addEventListener("dragleave", () => drop.classList.remove("tech-dragging"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("tech-dragging");
      if (event.dataTransfer?.files?.length) this.chooseFile(event.dataTransfer.files[0]);
    });
    this.chooseFile(null);
    return h("section", { class: "card tech-card tech-import", "aria-labelledby": "tech-import-title" },
      h("h2", { id: "tech-import-title", i18n: "tech.import.title" }),
      h("p", { class: "help", i18n: "tech.import.help" }),
      h("p", { class: "tech-columns" },
        h("span", { class: "help", i18n: "tech.import.columns" }),
        // A line break may come after each comma (<wbr>): the header stays one line to copy.
        h("code", {}, ...IMPORT_COLUMNS.flatMap((name, n) => [h("span", { text: n < IMPORT_COLUMNS.length - 1 ? `${name},` : name }), h("wbr")])),
      ),
      drop,
      h("div", { class: "tech-buttons" }, this.importButton),
      this.importReport,
    );
  }

  chooseFile(file) {
    this.csvFile = file ?? null;
    this.importButton.disabled = !file;
    this.fileName.replaceChildren(file ? h("span", { text: file.name }) : h("span", { i18n: "tech.import.no_file" }));
  }

  async importCsv() {
    if (!this.csvFile) return;
    this.importButton.disabled = true;
    tr(this.importButton, "tech.import.busy");
    let result;
    try {
      const data = await api("POST", "/api/v1/devices/import", this.csvFile, "text/csv");
      result = { ok: true, rows: data.rows, created: data.created };
    } catch (error) {
      if (!(error instanceof ApiError)) {
        result = { ok: false, key: "tech.error.network" };
      } else if (error.status === 401) {
        this.onUnauthorized();
        return;
      } else if (Array.isArray(error.detail?.errors)) {
        result = { ok: false, rows: error.detail.rows, errors: error.detail.errors };
      } else {
        result = { ok: false, message: error.message };
      }
    } finally {
      tr(this.importButton, "tech.import.submit");
      this.importButton.disabled = !this.csvFile;
    }
    this.importResult = result;
    this.renderImport(result);
    if (result.ok) this.loadList();
  }

  renderImport(result) {
    const report = this.importReport;
    if (result.ok) {
      report.replaceChildren(h("p", { class: "tech-ok", "data-testid": "import-done", i18n: ["tech.import.done", { created: formatNumber(result.created), rows: formatNumber(result.rows) }] }));
      return;
    }
    if (!result.errors) {
      report.replaceChildren(h("p", { class: "error" },
        h("span", { class: "tech-check", i18n: "tech.import.failed" }),
        result.key ? h("span", { i18n: result.key }) : h("span", { class: "tech-server-text", text: result.message }),
      ));
      return;
    }
    const rows = result.errors.map((e) =>
      h("tr", { "data-row": e.row, "data-field": e.field ?? "" },
        h("td", { text: formatNumber(e.row) }),
        e.field ? h("td", { class: "tech-code", text: e.field }) : h("td", { i18n: "tech.import.whole_row" }),
        h("td", { text: e.message }),
      ),
    );
    report.replaceChildren(
      h("p", { class: "error", i18n: ["tech.import.rejected", { count: formatNumber(result.errors.length), rows: formatNumber(result.rows) }] }),
      h("div", { class: "tech-table-wrap" },
        h("table", { class: "tech-table", "data-testid": "import-errors" },
          h("thead", {}, h("tr", {},
            h("th", { scope: "col", i18n: "tech.import.row" }),
            h("th", { scope: "col", i18n: "tech.import.field" }),
            h("th", { scope: "col", i18n: "tech.import.message" }),
          )),
          h("tbody", {}, ...rows),
        ),
      ),
    );
  }

  // ---- a device's page ----

  async openDevice(id, typed = false) {
    this.closeDevice();
    const state = { id, typed, device: null, key: undefined, startedEmpty: false, news: null, newsAt: null, checkedAt: null, failure: null, rejected: [], alerts: [] };
    this.current = state;
    this.back = h("button", { type: "button", class: "tech-back", "data-action": "back", i18n: "tech.page.back", onclick: () => this.go(null) });
    this.pageTitle = h("h2", { class: "tech-page-title", tabindex: "-1", text: id });
    this.facts = h("dl", { class: "facts tech-facts" });
    this.liveLine = h("p", { class: "tech-live-line", "data-testid": "live-status" });
    this.news = h("p", { class: "tech-news", "data-testid": "reading-news", role: "status", hidden: true });
    this.tiles = h("div", { class: "tech-tiles" });
    this.values = h("div", { class: "tech-values-holder" });
    this.liveCard = h("section", { class: "card tech-live", "data-testid": "live", "aria-labelledby": "tech-live-title" },
      h("h3", { id: "tech-live-title", i18n: "tech.live.title" }),
      this.liveLine,
      this.news,
      this.tiles,
      this.values,
    );
    this.liveCard.addEventListener("animationend", () => this.liveCard.classList.remove("tech-fresh"));
    this.alertsCard = h("section", { class: "card tech-alerts", hidden: true, "aria-labelledby": "tech-alerts-title" });
    this.rejectedCard = h("section", { class: "card tech-rejected", "data-testid": "rejected", hidden: true, "aria-labelledby": "tech-rejected-title" });
    const article = h("article", { class: "tech-page", "data-testid": "device-page", "data-device-id": id },
      h("header", { class: "tech-page-head" }, this.back, this.pageTitle),
      h("div", { class: "tech-page-grid" },
        h("div", { class: "tech-page-main" }, this.liveCard, this.alertsCard, this.rejectedCard),
        h("div", { class: "tech-page-side" },
          h("section", { class: "card", "aria-labelledby": "tech-facts-title" }, h("h3", { id: "tech-facts-title", i18n: "tech.page.facts" }), this.facts),
          this.acting ? this.credentialsCard(id) : null,
        ),
      ),
    );
    this.page.replaceChildren(article);
    this.home.hidden = true;
    this.page.hidden = false;
    this.renderLive();
    this.pageTitle.focus();
    await Promise.all([this.poll(), this.loadAlerts()]);
  }

  closeDevice(focusList = false) {
    const id = this.current?.id;
    clearTimeout(this.timer);
    this.forgetCredentials();
    this.current = null;
    this.page.replaceChildren();
    this.page.hidden = true;
    this.home.hidden = false;
    if (focusList && id) {
      (this.list.querySelector(`[data-device-id="${CSS.escape(id)}"]`) ?? this.query).focus();
    }
  }

  schedule() {
    clearTimeout(this.timer);
    // Not after sign-out either: the console then drops this view without hiding it.
    if (this.active && this.current && !document.hidden && this.root.isConnected) {
      this.timer = setTimeout(() => this.poll(), POLL_MS);
    }
  }

  async poll() {
    const state = this.current;
    if (!state || state.polling || !this.root.isConnected) return;
    state.polling = true;
    clearTimeout(this.timer);
    const path = `/api/v1/devices/${encodeURIComponent(state.id)}`;
    try {
      const [device, rejected] = await Promise.all([
        api("GET", path),
        api("GET", `/api/v1/ingest/rejected?device_id=${encodeURIComponent(state.id)}&limit=${REJECTED_SHOWN}`).catch(() => state.rejected),
      ]);
      if (state !== this.current) return;
      state.failure = null;
      state.checkedAt = new Date().toISOString();
      state.rejected = rejected;
      this.receive(state, device);
    } catch (error) {
      if (state !== this.current) return;
      if (error instanceof ApiError && error.status === 401) {
        this.closeDevice();
        this.onUnauthorized();
        return;
      }
      state.failure = error instanceof ApiError && error.status === 404 ? "missing" : "offline";
      this.renderLive();
    } finally {
      state.polling = false;
      if (state === this.current && state.failure !== "missing") this.schedule();
    }
  }

  receive(state, device) {
    const first = state.device === null;
    state.device = device;
    const reading = device.last_reading;
    const key = reading ? `${reading.ts}|${reading.seq ?? ""}` : null;
    if (first) {
      state.key = key;
      state.startedEmpty = key === null;
    } else if (key !== null && key !== state.key) {
      // The first reading since a page opened without any is the roof check's answer.
      state.news = state.startedEmpty && state.news === null ? "first" : "new";
      state.newsAt = new Date().toISOString();
      state.key = key;
      this.liveCard.classList.remove("tech-fresh");
      void this.liveCard.offsetWidth; // restart the highlight
      this.liveCard.classList.add("tech-fresh");
    }
    this.renderDevice();
  }

  renderDevice() {
    const device = this.current.device;
    this.pageTitle.textContent = device.name || device.id;
    this.renderFacts(device);
    this.renderLive();
    this.renderRejected();
  }

  renderFacts(device) {
    const row = (key, ...value) => [h("dt", { i18n: key }), h("dd", {}, ...value)];
    const items = [
      ...row("tech.page.id", h("span", { class: "tech-code", text: device.id })),
      ...row("tech.field.kind", h("span", { i18n: `tech.kind.${device.kind}` })),
      ...row("tech.field.status", statusChip(device.status)),
      ...row("tech.page.last_seen", device.last_seen_at ? h("span", { text: formatTime(device.last_seen_at), "data-time": device.last_seen_at }) : h("span", { i18n: "tech.page.never" })),
      ...row("tech.field.lat", h("span", { text: formatNumber(device.lat, 5) })),
      ...row("tech.field.lon", h("span", { text: formatNumber(device.lon, 5) })),
    ];
    for (const name of ["address", "district", "zone", "gateway_id", "model"]) {
      if (device[name]) items.push(...row(`tech.field.${name}`, h("span", { text: device[name] })));
    }
    if (device.depth_mm != null) items.push(...row("tech.field.depth_mm", h("span", { text: formatNumber(device.depth_mm) })));
    if (device.reporting_interval_s != null) {
      items.push(...row("tech.field.reporting_interval_s", h("span", { text: formatNumber(device.reporting_interval_s) })));
    }
    if (device.network_server) {
      items.push(...row("tech.field.network_server", h("span", { i18n: `tech.network_server.${device.network_server}` })));
      items.push(...row("tech.field.ns_device_id", h("span", { class: "tech-code", text: device.ns_device_id })));
    }
    if (device.profile) {
      // "Vendor Model (id)"; the bare id when that profile is not (or not yet) loaded.
      const profile = this.profiles.find((p) => p.id === device.profile);
      items.push(...row("tech.field.profile", h("span", { "data-profile": device.profile, text: profile ? `${profileName(profile)} (${profile.id})` : device.profile })));
    }
    this.facts.replaceChildren(...items);
  }

  renderLive() {
    const state = this.current;
    const device = state.device;
    const line = [h("span", { class: "tech-pulse", "aria-hidden": "true" })];
    if (state.failure === "missing") {
      line.push(h("span", { class: "error", i18n: state.typed ? "tech.page.not_found_typed" : "tech.page.not_found" }), h("span", { class: "tech-code", text: state.id }));
    } else if (state.failure === "offline") {
      line.push(h("span", { class: "error", i18n: "tech.live.offline" }));
    } else if (!device) {
      line.push(h("span", { i18n: "tech.live.loading" }));
    } else {
      line.push(h("span", { i18n: "tech.live.watching" }), h("span", { i18n: "tech.live.checked" }), h("span", { text: formatTime(state.checkedAt) }));
    }
    this.liveLine.replaceChildren(...line);
    this.liveLine.classList.toggle("tech-live-down", state.failure !== null);
    // Redrawn only when there is news (or a new language): a live region speaks each change.
    const newsShown = `${state.newsAt}|${document.documentElement.lang}`;
    if (state.news && this.news.dataset.shown !== newsShown) {
      this.news.dataset.shown = newsShown;
      this.news.hidden = false;
      this.news.dataset.news = state.news;
      this.news.replaceChildren(
        h("strong", { i18n: state.news === "first" ? "tech.live.first" : "tech.live.new" }),
        h("span", { text: formatTime(state.newsAt) }),
      );
    }
    if (!device) {
      this.tiles.replaceChildren();
      this.values.replaceChildren();
      return;
    }
    this.tiles.replaceChildren(
      tile("battery", "tech.page.battery",
        device.battery_pct != null ? quantity("battery_pct", device.battery_pct) : null,
        device.battery_v != null ? quantity("battery_v", device.battery_v) : null),
      tile("signal", "tech.page.signal", device.rssi_dbm != null ? quantity("rssi_dbm", device.rssi_dbm) : null),
    );
    const reading = device.last_reading;
    if (device.readings_error) {
      this.values.replaceChildren(h("p", { class: "error" }, h("span", { class: "tech-check", i18n: "tech.live.store_down" }), h("span", { class: "tech-server-text", text: device.readings_error })));
      return;
    }
    if (!reading) {
      this.values.replaceChildren(h("p", { class: "tech-waiting", "data-testid": "no-reading", i18n: "tech.live.none" }));
      return;
    }
    const values = Object.keys(DIGITS).filter((name) => typeof reading[name] === "number" && !CONDITION.has(name));
    this.values.replaceChildren(
      h("p", { class: "tech-reading-time" }, h("span", { i18n: "tech.live.reading_at" }), h("span", { text: formatTime(reading.ts), "data-time": reading.ts })),
      h("dl", { class: "tech-values", "data-testid": "reading-values" },
        ...values.flatMap((name) => [h("dt", { i18n: `tech.q.${name}` }), h("dd", { "data-quantity": name }, quantity(name, reading[name]))]),
        ...(reading.seq != null ? [h("dt", { i18n: "tech.live.seq" }), h("dd", {}, h("span", { text: formatNumber(reading.seq) }))] : []),
      ),
    );
  }

  renderRejected() {
    const rejected = this.current.rejected ?? [];
    this.rejectedCard.hidden = !rejected.length;
    this.rejectedCard.replaceChildren(
      h("h3", { id: "tech-rejected-title", i18n: "tech.rejected.title" }),
      h("p", { class: "help", i18n: "tech.rejected.help" }),
      h("ul", { class: "tech-rejected-list" },
        ...rejected.map((r) => h("li", {},
          h("span", { class: "when", text: formatTime(r.received_at) }),
          h("span", { class: "tech-code", text: r.reason }),
          h("span", { class: "tech-server-text", text: r.detail }),
        )),
      ),
    );
  }

  async loadAlerts() {
    const state = this.current;
    if (!state) return;
    try {
      const alerts = await api("GET", `/api/v1/alerts?device_id=${encodeURIComponent(state.id)}&active=true&limit=20`);
      if (state !== this.current) return;
      this.alertsCard.hidden = !alerts.length;
      this.alertsCard.replaceChildren(
        h("h3", { id: "tech-alerts-title", i18n: "tech.alerts.title" }),
        h("ul", { class: "tech-alert-list" },
          ...alerts.map((a) => h("li", { "data-alert-kind": a.kind },
            h("strong", { i18n: ALERT_KINDS.has(a.kind) ? `tech.alert.${a.kind}` : "tech.alert.other" }),
            h("span", { class: "when", text: formatTime(a.raised_at) }),
            h("span", { class: "tech-server-text", text: a.reason }),
          )),
        ),
      );
    } catch {
      // The page's own poll reports a lost connection; alerts are extra.
    }
  }

  // ---- MQTT credentials ----

  credentialsCard(id) {
    this.credsBox = h("div", { class: "tech-creds-box" });
    const confirm = h("div", { class: "tech-confirm", hidden: true },
      h("p", { class: "tech-warning", i18n: "tech.creds.confirm" }),
      h("div", { class: "tech-buttons" },
        h("button", { type: "button", class: "primary", "data-action": "confirm-credentials", i18n: "tech.creds.confirm_button", onclick: () => this.issue(id, issue, confirm) }),
        h("button", { type: "button", i18n: "dialog.cancel", onclick: () => { confirm.hidden = true; issue.hidden = false; issue.focus(); } }),
      ),
    );
    const issue = h("button", { type: "button", "data-action": "issue-credentials", i18n: "tech.creds.issue", onclick: () => {
      issue.hidden = true;
      confirm.hidden = false;
      confirm.querySelector("button").focus();
    } });
    return h("section", { class: "card tech-creds", "data-testid": "credentials-panel", "aria-labelledby": "tech-creds-title" },
      h("h3", { id: "tech-creds-title", i18n: "tech.creds.title" }),
      h("p", { class: "help", i18n: "tech.creds.help" }),
      issue,
      confirm,
      this.credsBox,
    );
  }

  async issue(id, issueButton, confirm) {
    const busy = confirm.querySelector("[data-action=confirm-credentials]");
    busy.disabled = true;
    this.forgetCredentials();
    try {
      const login = await api("POST", `/api/v1/devices/${encodeURIComponent(id)}/credentials`);
      if (this.current?.id !== id) return; // left the page meanwhile: nothing to show
      this.showCredentials(login);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return this.onUnauthorized();
      this.credsBox.replaceChildren(h("p", { class: "error", role: "alert" },
        h("span", { class: "tech-check", i18n: "tech.creds.failed" }),
        error instanceof ApiError ? h("span", { class: "tech-server-text", text: error.message }) : h("span", { i18n: "tech.error.network" }),
      ));
    } finally {
      busy.disabled = false;
      confirm.hidden = true;
      issueButton.hidden = false;
    }
  }

  // Shown in the page only: never put in storage, a URL or a variable that outlives it.
  showCredentials(login) {
    const secret = (name, value) =>
      h("div", { class: "tech-secret" },
        h("code", { class: "tech-code", "data-testid": `credential-${name}`, text: value }),
        h("button", { type: "button", "data-action": "copy", "data-copy": name, i18n: "tech.creds.copy", onclick: (event) => copy(event.currentTarget) }),
      );
    this.credsBox.replaceChildren(
      h("div", { class: "tech-once", "data-testid": "credentials" },
        h("p", { class: "tech-warning", role: "alert", "data-testid": "credentials-warning", i18n: "tech.creds.warning" }),
        h("dl", { class: "facts" },
          h("dt", { i18n: "tech.creds.username" }), h("dd", {}, secret("username", login.username)),
          h("dt", { i18n: "tech.creds.password" }), h("dd", {}, secret("password", login.password)),
          h("dt", { i18n: "tech.creds.topics" }),
          h("dd", {}, ...login.publish_topics.map((topic, n) => secret(`topic-${n}`, topic))),
        ),
        h("button", { type: "button", "data-action": "hide-credentials", i18n: "tech.creds.done", onclick: () => this.forgetCredentials() }),
      ),
    );
    this.credsBox.querySelector("[data-copy=password]").focus();
  }

  forgetCredentials() {
    this.credsBox?.replaceChildren();
  }
}

// The API's 422 (pydantic's list, or one message) and 409 answers as (field, message):
// `loc` names the field; a model-level message starts with the field it is about.
export function problems(status, detail) {
  if (Array.isArray(detail)) return detail.map(fromPydantic);
  const message = typeof detail === "string" ? detail : JSON.stringify(detail);
  return [{ field: fieldOf(message) ?? (status === 409 ? "id" : null), message }];
}

function fromPydantic(error) {
  const loc = Array.isArray(error?.loc) ? error.loc.slice(error.loc[0] === "body" ? 1 : 0) : [];
  let message = String(error?.msg ?? error).replace(/^Value error, /, "");
  let field = null;
  if (loc.length && FIELDS.has(String(loc[0]))) {
    field = String(loc[0]);
    if (loc.length > 1) message = `${loc.slice(1).join(".")}: ${message}`;
  } else if (!loc.length) {
    field = fieldOf(message);
  }
  return { field, message };
}

function fieldOf(message) {
  const first = message.split(/\s/, 1)[0].replace(/:$/, "");
  return FIELDS.has(first) ? first : null;
}

// A number when the text is one ("-2,54" too: the decimal comma of an Indonesian keyboard),
// else the text itself, for the API to refuse with its own words.
function toNumber(raw) {
  const text = /^[-+]?\d*,\d+$/.test(raw) ? raw.replace(",", ".") : raw;
  const value = Number(text);
  return text !== "" && Number.isFinite(value) ? value : raw;
}

function toJson(raw) {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

// "Dragino LDDS75"; a model that already starts with its vendor's name is shown alone.
function profileName(profile) {
  return profile.model.startsWith(profile.vendor) ? profile.model : `${profile.vendor} ${profile.model}`;
}

function statusChip(status) {
  return h("span", { class: `chip tech-status-${status}`, i18n: `tech.status.${status}` });
}

function quantity(name, value) {
  return h("span", { class: "tech-quantity" },
    h("span", { class: "tech-number", text: formatNumber(value, DIGITS[name] ?? 1) }),
    h("span", { class: "tech-unit", i18n: `tech.unit.${name}` }),
  );
}

function tile(testid, labelKey, ...values) {
  const shown = values.filter(Boolean);
  return h("div", { class: "tech-tile", "data-testid": testid },
    h("span", { class: "tech-tile-label", i18n: labelKey }),
    shown.length ? h("span", { class: "tech-tile-values" }, ...shown) : h("span", { class: "tech-tile-none", i18n: "tech.page.not_reported" }),
  );
}

// Copy with the clipboard API where the browser allows it; otherwise select the text so
// that Ctrl+C (or a long press) copies it.
async function copy(button) {
  const code = button.parentElement.querySelector("code");
  try {
    await navigator.clipboard.writeText(code.textContent);
    tr(button, "tech.creds.copied");
  } catch {
    const range = document.createRange();
    range.selectNodeContents(code);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    tr(button, "tech.creds.selected");
  }
  setTimeout(() => button.isConnected && tr(button, "tech.creds.copy"), 4000);
}
