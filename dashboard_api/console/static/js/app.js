// The console: sign-in, the header (who, language, sound, sign-out), the connection
// banner, and the views a role may use. Talks to the same /api/v1 as every other client.
import { AlertStream, ApiError, api, setCsrf } from "./api.js";
import { DispatchView } from "./dispatch.js";
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
  const select = h("select", { "data-testid": "lang", id: "lang", "data-i18n-label": "header.language" },
    h("option", { value: "id", lang: "id", i18n: "lang.id" }),
    h("option", { value: "en", lang: "en", i18n: "lang.en" }),
  );
  select.value = currentLang();
  select.addEventListener("change", async () => {
    await loadLang(select.value);
    retranslate();
    rerender?.();
  });
  return select;
}

let rerender = null;

function showConsole() {
  setCsrf(session.csrf_token);
  const canAct = () => ACTING_ROLES.has(session?.role);
  const view = new DispatchView({ canAct, notify, onUnauthorized: () => showSignIn("error.session") });
  rerender = () => {
    for (const card of view.list.children) card.dataset.version = ""; // force re-render
    view.render();
  };
  const soundButton = h("button", { type: "button", "data-testid": "enable-sound", class: "sound", "aria-pressed": "false" },
    icon("bell"), h("span", { i18n: "header.sound_off" }));
  soundButton.addEventListener("click", async () => {
    if (await enableSound()) {
      soundButton.setAttribute("aria-pressed", "true");
      tr(soundButton.querySelector("span:last-child"), "header.sound_on");
    }
  });
  if (soundEnabled()) {
    soundButton.setAttribute("aria-pressed", "true");
    tr(soundButton.querySelector("span:last-child"), "header.sound_on");
  }
  const user = h("span", { class: "user", "data-testid": "user" },
    h("span", { text: session.name }),
    h("span", { class: "role", i18n: `role.${session.role}` }),
  );
  const signOut = h("button", { type: "button", "data-testid": "sign-out", i18n: "header.signout", onclick: signOutNow });
  const nav = h("nav", { class: "tabs", "data-i18n-label": "nav.label" },
    h("a", { href: "#dispatch", "data-view": "dispatch", "aria-current": "page", i18n: "nav.dispatch" }),
  );
  app.replaceChildren(brandBar(soundButton, user, signOut), nav, h("main", { id: "main" }, view.root));
  retranslate(app);
  startLive(view);
  // Keep the session alive while the console is open (it expires after hours idle).
  refresher = setInterval(() => api("GET", "/console/session").catch((e) => e instanceof ApiError && e.status === 401 && showSignIn("error.session")), 5 * 60 * 1000);
}

function startLive(view) {
  stopLive();
  stream = new AlertStream({
    onEvent: (_event, alert) => view.apply(alert),
    onOpen: async (fresh) => {
      banner.hidden = true;
      // Without an event id to resume from, the list itself is the catch-up.
      if (fresh) await view.reload();
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
