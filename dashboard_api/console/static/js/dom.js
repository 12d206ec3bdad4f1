// Small DOM helpers: elements with catalogue text (i18n) or data (value), never both.
import { tr } from "./i18n.js";

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "i18n") {
      const [key, params] = Array.isArray(value) ? value : [value, undefined];
      tr(element, key, params);
    } else if (name === "text") {
      // Data shown as is (ids, names, numbers, times): marked so tests can tell it apart.
      element.dataset.value = "";
      element.textContent = String(value);
    } else if (name === "class") {
      element.className = value;
    } else if (name.startsWith("on")) {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) element.append(child);
  }
  return element;
}

export const ICONS = {
  fire:
    '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M13.5 2.5s.9 3.1-1.2 5.6C10.6 10 8 11.5 8 15a4 4 0 0 0 8 0c0-1.4-.6-2.6-1.3-3.5 1.9.6 3.8 2.6 3.8 5.1A6.5 6.5 0 0 1 12 23a6.5 6.5 0 0 1-6.5-6.4c0-4.6 3.6-6.8 5.4-9.1 1.2-1.6 1.3-3.4 2.6-5Z"/></svg>',
  bell:
    '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.5-2.5h-5A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.8V3a1.5 1.5 0 0 0-3 0v1.2A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z"/></svg>',
  plug:
    '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M16 7V3h-2v4h-4V3H8v4H6v5a6 6 0 0 0 5 5.9V22h2v-4.1a6 6 0 0 0 5-5.9V7Z"/></svg>',
};

export function icon(name, className = "icon") {
  const span = document.createElement("span");
  span.className = className;
  span.innerHTML = ICONS[name];
  return span;
}
