// Message catalogue, language switch and locale formats. Every visible string comes from
// i18n/<lang>.json; elements carry data-i18n (and data-i18n-params) so that a language
// switch re-translates them in place and tests can tell catalogue text from data.

const LANGS = { id: "id-ID", en: "en-GB" };
const STORE_KEY = "sigap.lang"; // a preference, not a secret
const catalogues = {};
let lang = "id";

export function currentLang() {
  return lang;
}

export async function loadLang(wanted) {
  const chosen = wanted in LANGS ? wanted : "id";
  if (!catalogues[chosen]) {
    const response = await fetch(`/console/static/i18n/${chosen}.json`, { cache: "no-cache" });
    catalogues[chosen] = await response.json();
  }
  lang = chosen;
  document.documentElement.lang = chosen;
  localStorage.setItem(STORE_KEY, chosen);
  return chosen;
}

export function savedLang() {
  return localStorage.getItem(STORE_KEY) || "id";
}

export function t(key, params = {}) {
  const text = catalogues[lang]?.[key];
  if (text === undefined) {
    console.error(`missing message ${key} (${lang})`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

export function has(key) {
  return catalogues[lang]?.[key] !== undefined;
}

// Set an element's text from the catalogue and remember the key for a language switch.
export function tr(element, key, params) {
  element.dataset.i18n = key;
  if (params && Object.keys(params).length) {
    element.dataset.i18nParams = JSON.stringify(params);
  } else {
    delete element.dataset.i18nParams;
  }
  element.textContent = t(key, params);
  return element;
}

// Re-translate every element with data-i18n (after a language switch); attributes too.
export function retranslate(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    const params = element.dataset.i18nParams ? JSON.parse(element.dataset.i18nParams) : {};
    element.textContent = t(element.dataset.i18n, params);
  }
  for (const element of root.querySelectorAll("[data-i18n-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nLabel));
  }
  for (const element of root.querySelectorAll("[data-i18n-title]")) {
    element.title = t(element.dataset.i18nTitle);
  }
  document.title = t("app.name");
}

export function formatNumber(value, digits = 0) {
  return new Intl.NumberFormat(LANGS[lang], {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(value);
}

// Times are shown in WIB (Asia/Jakarta, UTC+7) with the zone named, whatever the PC's zone.
export function formatTime(iso) {
  const moment = new Date(iso);
  const time = new Intl.DateTimeFormat(LANGS[lang], {
    timeZone: "Asia/Jakarta",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  }).format(moment);
  return t("time.at", { time, zone: t("time.zone") });
}
