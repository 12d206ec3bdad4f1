// The API as the console uses it: same-origin fetch with the session cookie (HttpOnly,
// never readable here), the CSRF token on writes, and a resumable alert stream.

let csrfToken = null;
const SILENT_MS = 40000; // the stream's pings come every 15 s

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

export function setCsrf(token) {
  csrfToken = token;
}

// `body` is sent as JSON, unless `contentType` says it is already the body (a CSV file).
export async function api(method, path, body, contentType = null) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = csrfToken || "";
  }
  if (body !== undefined) {
    headers["Content-Type"] = contentType ?? "application/json";
  }
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined || contentType ? body : JSON.stringify(body),
  });
  if (response.status === 204) {
    return null;
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data?.detail?.message ?? data?.detail ?? response.statusText;
    throw new ApiError(response.status, detail);
  }
  return data;
}

// Server-Sent Events over fetch rather than EventSource: EventSource cannot be told where
// to resume after it gave up, and cannot report a 401. This reader reconnects forever
// with Last-Event-ID, so after an outage the server replays exactly what was missed.
export class AlertStream {
  constructor({ onEvent, onOpen, onDown, onUnauthorized }) {
    Object.assign(this, { onEvent, onOpen, onDown, onUnauthorized });
    this.lastEventId = null;
    this.stopped = false;
    this.controller = null;
    this.lastByte = 0;
    this.watchdog = null;
  }

  start() {
    this.stopped = false;
    // A cable pulled or a router gone quiet closes nothing: the server pings every 15 s,
    // so a stream silent for 40 s is dead; cutting it shows the banner and reconnects.
    this.watchdog = setInterval(() => {
      if (this.controller && this.lastByte && performance.now() - this.lastByte > SILENT_MS) {
        this.controller.abort();
      }
    }, 5000);
    this.loop();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watchdog);
    this.controller?.abort();
  }

  async loop() {
    let delay = 500;
    while (!this.stopped) {
      try {
        await this.once();
        delay = 500; // the server ended the stream cleanly: come straight back
      } catch (error) {
        if (this.stopped) return;
        if (error instanceof ApiError && error.status === 401) {
          this.onUnauthorized();
          return;
        }
      }
      if (this.stopped) return;
      this.onDown();
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 4000);
    }
  }

  async once() {
    this.controller = new AbortController();
    const headers = { Accept: "text/event-stream" };
    if (this.lastEventId !== null) {
      headers["Last-Event-ID"] = this.lastEventId;
    }
    const response = await fetch("/api/v1/alerts/stream", {
      headers,
      credentials: "same-origin",
      signal: this.controller.signal,
      cache: "no-store",
    });
    if (!response.ok) {
      throw new ApiError(response.status, response.statusText);
    }
    this.lastByte = performance.now();
    await this.onOpen(this.lastEventId === null);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      this.lastByte = performance.now();
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        this.dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  dispatch(block) {
    let event = "message";
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "id") id = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    if (id !== null) this.lastEventId = id;
    this.onEvent(event, JSON.parse(data.join("\n")), id);
  }
}
