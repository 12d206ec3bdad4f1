// The console: sign-in, the header (who, language, sound, sign-out), the connection
// banner, and the views a role may use. Talks to the same /api/v1 as every other client.
import { AlertStream, ApiError, api, setCsrf } from "./api.js";
import { CrewView } from "./crew.js";
import { DispatchView } from "./dispatch.js";
import { HazeFeed } from "./haze.js";
import { IncidentView } from "./incident.js";
import { MapView } from "./mapview.js";
import { TechnicianView } from "./technician.js";
import { h, icon } from "./dom.js";
import { currentLang, loadLang, retranslate, savedLang, tr } from "./i18n.js";
import { enableSound, soundEnabled } from "./sound.js";

const ACTING_ROLES = new Set(["dispatcher", "admin"]);
const app = document.getElementById("app");
const banner = document.getElementById("connection-banner");
const toast = document.getElementById("toast");
let session = null;
let stream = null;
let refresher = null;
let haze = null; // the regional haze, shared by the views that show it

async function start() {
  await loadLang(savedLang());
  retranslate();
  try {
    session = await api("GET", "/console/session");
  } catch (error) {
    session = null;
  }
  if (session) showConsole();
  else showSignIn();
}

function showSignIn(messageKey) {
  stopLive();
  haze?.stop();
  haze = null;
  // Views stop their own timers (a device page polls) before their page goes.
  current?.view.hide?.();
  current = null;
  views = [];
  session = null;
  setCsrf(null);
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p", { class: "error", "data-testid": "sign-in-error", role: "alert" });
  if (messageKey) tr(error, messageKey);
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "sign-in", i18n: "signin.submit" });
  const form = h("form", { class: "signin card", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title", i18n: "signin.title" }),
    h("label", { for: "token", i18n: "signin.token" }),
    input,
    h("p", { class: "help", i18n: "signin.help" }),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    tr(submit, "signin.busy");
    submit.disabled = true;
    try {
      session = await api("POST", "/console/session", { token: input.value.trim() });
      input.value = ""; // the token lives only in the server's session from here on
      showConsole();
    } catch (failure) {
      tr(error, failure instanceof ApiError && failure.status < 500 ? "signin.invalid" : "signin.failed");
      tr(submit, "signin.submit");
      submit.disabled = false;
      input.focus();
    }
  });
  app.replaceChildren(brandBar(), h("main", { id: "main" }, form));
  input.focus();
}

function brandBar(...extra) {
  return h("header", { class: "topbar" },
    h("div", { class: "brand" }, icon("fire", "icon brand-icon"), h("span", { class: "brand-name", i18n: "app.name" }), h("span", { class: "tagline", i18n: "app.tagline" })),
    h("div", { class: "tools" }, languageSelect(), ...extra),
  );
}

function languageSelect() {
  // Each language's name in itself, so one can find one's own whatever is showing.
  const chooser = h("select", { "data-testid": "lang", id: "lang", "data-i18n-label": "header.language" },
    h("option", { value: "id", lang: "id", i18n: "lang.id" }),
    h("option", { value: "en", lang: "en", i18n: "lang.en" }),
  );
  chooser.value = currentLang();
  chooser.addEventListener("change", async () => {
    await loadLang(chooser.value);
    retranslate();
    if (session) rerender();
  });
  return chooser;
}

// The views, in tab order. Every role may read every view (the API enforces who may
// change what); `acts` says which roles see a view's action buttons. A view is a class
// taking a context ({ session, canAct, notify, onUnauthorized, haze }; haze: the HazeFeed
// of js/haze.js) with:
//   root (its element), apply(alert) (each alert change from the live stream),
//   reload() (fetch its data; also the catch-up after a reconnect without an event id),
//   redraw() (after a language switch), show() / hide() (its tab selected or left).
const VIEWS = [
  { id: "dispatch", label: "nav.dispatch", acts: ["dispatcher", "admin"], make: (ctx) => new DispatchView(ctx) },
  { id: "map", label: "nav.map", acts: [], make: (ctx) => new MapView(ctx) },
  { id: "crew", label: "crew.nav", acts: ["crew", "admin"], make: (ctx) => new CrewView(ctx) },
  { id: "devices", label: "tech.nav", acts: ["technician", "admin"], make: (ctx) => new TechnicianView(ctx) },
  // Opened from an alert's incident line (#incident/<id>), not a tab of its own.
  { id: "incident", label: null, acts: [], make: (ctx) => new IncidentView(ctx) },
];

let views = [];
let current = null;

function showConsole() {
  setCsrf(session.csrf_token);
  const soundButton = h("button", { type: "button", "data-testid": "enable-sound", class: "sound", "aria-pressed": "false" },
    icon("bell"), h("span", { i18n: "header.sound_off" }));
  const soundOn = () => {
    soundButton.setAttribute("aria-pressed", "true");
    tr(soundButton.querySelector("span:last-child"), "header.sound_on");
  };
  soundButton.addEventListener("click", async () => {
    if (await enableSound()) soundOn();
  });
  if (soundEnabled()) soundOn();
  const user = h("span", { class: "user", "data-testid": "user" },
    h("span", { text: session.name }),
    h("span", { class: "role", i18n: `role.${session.role}` }),
  );
  const signOut = h("button", { type: "button", "data-testid": "sign-out", i18n: "header.signout", onclick: signOutNow });
  const onUnauthorized = () => showSignIn("error.session");
  haze?.stop();
  haze = new HazeFeed();
  views = VIEWS.map((spec) => ({
    spec,
    view: spec.make({
      session,
      canAct: () => spec.acts.includes(session?.role),
      notify,
      onUnauthorized,
      haze,
    }),
  }));
  const nav = h("nav", { class: "tabs", "data-i18n-label": "nav.label" },
    ...views.filter(({ spec }) => spec.label).map(({ spec }) => h("a", { href: `#${spec.id}`, "data-view": spec.id, i18n: spec.label })),
  );
  const main = h("main", { id: "main" }, ...views.map(({ view }) => view.root));
  app.replaceChildren(brandBar(soundButton, user, signOut), nav, main);
  retranslate(app);
  window.onhashchange = () => select(location.hash.slice(1));
  select(location.hash.slice(1));
  haze.start();
  startLive();
  // Keep the session alive while the console is open (it expires after hours idle).
  refresher = setInterval(
    () => api("GET", "/console/session").catch((e) => e instanceof ApiError && e.status === 401 && onUnauthorized()),
    5 * 60 * 1000,
  );
}

// A hash is a view id and its arguments: #dispatch, #map, #incident/12.
function select(hash) {
  const [id, ...args] = hash.split("/");
  const chosen = views.find(({ spec }) => spec.id === id) ?? views[0];
  for (const entry of views) {
    const active = entry === chosen;
    entry.view.root.hidden = !active;
    const tab = document.querySelector(`a[data-view="${entry.spec.id}"]`);
    if (active) tab?.setAttribute("aria-current", "page");
    else tab?.removeAttribute("aria-current");
    if (!active && entry === current) entry.view.hide?.();
  }
  // Shown again even when already current: the arguments may have changed.
  chosen.view.show?.(args);
  current = chosen;
}

function rerender() {
  for (const { view } of views) view.redraw();
}

function startLive() {
  stopLive();
  stream = new AlertStream({
    onEvent: (_event, alert) => {
      for (const { view } of views) view.apply(alert);
      // A district's haze changed category, began or lifted: the engine has the details.
      if (alert.category === "haze") haze?.refresh();
    },
    onOpen: async (fresh) => {
      banner.hidden = true;
      // Not waited for: the haze is context, the alerts are what the stream must not miss.
      if (fresh) haze?.refresh();
      // Without an event id to resume from, the views' own lists are the catch-up.
      if (fresh) await Promise.all(views.map(({ view }) => view.reload()));
    },
    onDown: () => {
      banner.hidden = false;
    },
    onUnauthorized: () => showSignIn("error.session"),
  });
  stream.start();
}

function stopLive() {
  stream?.stop();
  stream = null;
  clearInterval(refresher);
  refresher = null;
  banner.hidden = true;
}

async function signOutNow() {
  try {
    await api("DELETE", "/console/session");
  } finally {
    showSignIn();
  }
}

function notify(key, params) {
  tr(toast.querySelector("p"), key, params);
  toast.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => {
    toast.hidden = true;
  }, 8000);
}

start();
