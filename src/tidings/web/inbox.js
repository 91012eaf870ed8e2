// <tidings-inbox>: the Tidings in-app inbox (bell, unread badge, dropdown list) as a standard
// Custom Element. Plain JavaScript, no build step, no dependencies: <script type="module" src>.
//
// Attributes: api (Tidings base URL; default same origin), user (user id), token (subscriber JWT),
// service-worker (the Web Push service worker's URL, on the page's own origin; default
// {api}/web/sw.js). Where the browser can do Web Push, a "Turn on push" button subscribes.
// Events (bubbling, composed): tidings:notification {item}, tidings:count {unread_count,
// unseen_count}, tidings:error {status, message}, tidings:push {endpoint} (subscribed to Web
// Push; the host then has data-push="on"). The host's data-stream attribute says whether
// the live stream is "connecting", "open" or "closed" (for an offline hint, and for tests).

const PAGE_SIZE = 20;
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
// Several count-changing events often arrive together (a replay, a burst of sends); one
// GET /inbox/count after they settle is enough.
const COUNT_SETTLE_MS = 150;

const STYLE = `
:host { position: relative; display: inline-block; font: 14px/1.4 system-ui, sans-serif;
  color: var(--tidings-text, #1f2328); --accent: var(--tidings-accent, #2563eb); }
[hidden] { display: none !important; }
button { font: inherit; color: inherit; cursor: pointer; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
[part="bell"] { position: relative; display: grid; place-items: center; width: 40px; height: 40px;
  border: 0; border-radius: 50%; background: transparent; }
[part="bell"]:hover, [part="bell"][aria-expanded="true"] { background: rgb(0 0 0 / 6%); }
[part="bell"]:focus-visible, button:focus-visible, a:focus-visible {
  outline: 2px solid var(--accent); outline-offset: 2px; }
[part="badge"] { position: absolute; top: 2px; right: 0; min-width: 18px; height: 18px;
  padding: 0 5px; box-sizing: border-box; border-radius: 9px; background: #dc2626; color: #fff;
  font-size: 11px; font-weight: 600; line-height: 18px; text-align: center; }
[part="panel"] { position: absolute; right: 0; top: calc(100% + 6px); z-index: 1000;
  width: min(360px, 92vw); max-height: 480px; overflow: auto; border-radius: 10px;
  background: var(--tidings-bg, #fff); border: 1px solid rgb(0 0 0 / 12%);
  box-shadow: 0 10px 30px rgb(0 0 0 / 15%); }
[part="header"] { position: sticky; top: 0; display: flex; align-items: center;
  justify-content: space-between; padding: 10px 12px; background: inherit;
  border-bottom: 1px solid rgb(0 0 0 / 8%); }
[part="mark-all"], [part="more"] { border: 0; background: none; color: var(--accent);
  padding: 4px; }
[part="mark-all"]:disabled { color: #8c959f; cursor: default; }
[part="push"] { border: 0; background: none; color: var(--accent); padding: 4px; }
[part="list"] { list-style: none; margin: 0; padding: 0; }
[part="item"] { display: flex; align-items: flex-start; border-bottom: 1px solid rgb(0 0 0 / 6%); }
[part="item"][data-read="false"] { background: rgb(37 99 235 / 5%); }
.main { flex: 1; display: flex; gap: 10px; padding: 10px 12px; border: 0; background: none;
  text-align: left; }
.dot { flex: none; width: 8px; height: 8px; margin-top: 6px; border-radius: 50%; }
[data-read="false"] .dot { background: var(--accent); }
.title { display: block; font-weight: 600; }
.body { display: block; color: #424a53; white-space: pre-line; }
time { display: block; color: #6e7781; font-size: 12px; }
[part="action"] { flex: none; padding: 10px 12px; color: var(--accent); text-decoration: none; }
[part="status"] { margin: 0; padding: 16px 12px; color: #6e7781; text-align: center; }
[part="more"] { display: block; width: 100%; padding: 10px; }
`;

const SHELL = `
<button part="bell" data-testid="bell" type="button" aria-controls="panel" aria-expanded="false"
  aria-label="Notifications">
  <svg width="22" height="22" viewBox="0 0 24 24" fill="none" stroke="currentColor"
    stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">
    <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9"/><path d="M10.3 21a1.94 1.94 0 0 0 3.4 0"/>
  </svg>
  <span part="badge" data-testid="badge" data-count="0" hidden></span>
</button>
<div part="panel" id="panel" data-testid="panel" role="region" aria-labelledby="heading" hidden>
  <div part="header">
    <strong id="heading">Notifications</strong>
    <button part="push" data-testid="push" type="button" hidden>Turn on push</button>
    <button part="mark-all" data-testid="mark-all" type="button">Mark all read</button>
  </div>
  <ul part="list" data-testid="list" role="list" aria-labelledby="heading"></ul>
  <p part="status" data-testid="status" role="status"></p>
  <button part="more" data-testid="more" type="button" hidden>Load more</button>
</div>
`;

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
  ["hour", 3600], ["minute", 60]];

function timeAgo(iso) {
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return "just now";
}

// Only http(s) or relative links: an action_url comes from whoever sent the notification.
function safeHref(url) {
  try {
    const parsed = new URL(url, document.baseURI);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

class RequestError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class TidingsInbox extends HTMLElement {
  static observedAttributes = ["api", "user", "token"];

  #root;
  #items = new Map(); // id -> item: dedupes replays and lets updates land in place
  #nodes = new Map(); // id -> <li>; updated in place so focus survives a change
  #busy = new Set(); // ids with a read request in flight, so a double click sends one
  #counts = { unread_count: 0, unseen_count: 0 };
  // Bumped whenever counts are set; an answer to a request sent before a newer count arrived
  // is stale and dropped, so the badge never steps back.
  #countVersion = 0;
  #cursor = null;
  #lastEventId = "";
  #source = null;
  #retryDelay = FIRST_RETRY_MS;
  #retryTimer = 0;
  #countTimer = 0;
  #clockTimer = 0;
  #loaded = false;
  #error = "";
  #restartQueued = false;
  #resetQueued = false;
  // Bumped on every (re)start; answers that belong to an older user or token are dropped.
  #generation = 0;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    this.#root.innerHTML = `<style>${STYLE}</style>${SHELL}`;
    this.#part("bell").addEventListener("click", () => this.toggle());
    this.#part("mark-all").addEventListener("click", () => this.markAllRead());
    this.#part("more").addEventListener("click", () => this.#loadPage(this.#cursor));
    this.#part("list").addEventListener("click", (event) => this.#onListClick(event));
    this.#part("push").addEventListener("click", () => this.subscribePush());
  }

  // On the document, not the element: focus may sit on the page (e.g. after "Mark all read"
  // disabled itself) and Escape should still close the panel.
  #onDocumentKey = (event) => {
    if (event.key !== "Escape" || !this.isOpen) return;
    const hadFocus = event.composedPath().includes(this);
    this.close();
    if (hadFocus) this.#part("bell").focus();
  };

  #onDocumentClick = (event) => {
    if (this.isOpen && !event.composedPath().includes(this)) this.close();
  };

  connectedCallback() {
    document.addEventListener("click", this.#onDocumentClick);
    document.addEventListener("keydown", this.#onDocumentKey);
    this.#queueRestart(true);
    this.#offerPush();
  }

  disconnectedCallback() {
    document.removeEventListener("click", this.#onDocumentClick);
    document.removeEventListener("keydown", this.#onDocumentKey);
    this.#stop();
  }

  attributeChangedCallback(name, before, after) {
    if (before === after) return;
    // A new token for the same user (a refresh) keeps the list and resumes the stream from the
    // last event; another user or server starts from nothing.
    this.#queueRestart(name !== "token");
  }

  get unreadCount() {
    return this.#counts.unread_count;
  }

  get isOpen() {
    return !this.#part("panel").hidden;
  }

  open() {
    if (this.isOpen) return;
    this.#part("panel").hidden = false;
    this.#part("bell").setAttribute("aria-expanded", "true");
    this.#refreshTimes();
    this.#clockTimer = setInterval(() => this.#refreshTimes(), 30_000);
    this.#markVisibleSeen();
  }

  close() {
    this.#part("panel").hidden = true;
    this.#part("bell").setAttribute("aria-expanded", "false");
    clearInterval(this.#clockTimer);
  }

  toggle() {
    if (this.isOpen) this.close();
    else this.open();
  }

  async markAllRead() {
    const generation = this.#generation;
    try {
      await this.#request("POST", "/inbox/read-all");
    } catch (error) {
      return this.#fail(error);
    }
    if (generation !== this.#generation) return;
    const now = new Date().toISOString();
    for (const item of this.#items.values()) {
      if (!item.read_at) this.#upsert({ ...item, read_at: now });
    }
    this.#refreshCount(0);
  }

  async markRead(id) {
    const item = this.#items.get(id);
    if (!item || item.read_at || this.#busy.has(id)) return;
    const generation = this.#generation;
    this.#busy.add(id);
    try {
      // keepalive: the request must finish even when the click also follows an action link.
      const updated = await this.#request("POST", `/inbox/${encodeURIComponent(id)}/read`,
        { keepalive: true });
      if (generation !== this.#generation) return;
      this.#upsert(updated);
      // The server's count, not local arithmetic: an `inbox` event for this same change may
      // already have arrived, and subtracting again would count it twice.
      this.#refreshCount(0);
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#busy.delete(id);
    }
  }

  // ---- lifecycle --------------------------------------------------------------------------

  #queueRestart(reset) {
    this.#resetQueued ||= reset;
    if (this.#restartQueued) return;
    // Attributes arrive one at a time (parser, setAttribute x3); start once they have all landed.
    this.#restartQueued = true;
    queueMicrotask(() => {
      this.#restartQueued = false;
      const reset = this.#resetQueued;
      this.#resetQueued = false;
      if (this.isConnected) this.#start(reset);
    });
  }

  #start(reset) {
    this.#stop();
    if (reset) this.#clear();
    if (!this.getAttribute("user") || !this.getAttribute("token")) {
      this.#error = "Not signed in.";
      this.#renderStatus();
      return;
    }
    // The stream opens before the first page is read, so nothing sent in between is missed;
    // an item that shows up in both is merged by id.
    this.#connect();
    this.#loadPage(null);
  }

  #stop() {
    this.#generation += 1;
    this.#source?.close();
    this.#source = null;
    this.dataset.stream = "closed";
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#countTimer);
    this.#retryDelay = FIRST_RETRY_MS;
  }

  #clear() {
    this.#items.clear();
    this.#nodes.clear();
    this.#part("list").replaceChildren();
    this.#cursor = null;
    this.#lastEventId = "";
    this.#loaded = false;
    this.#error = "";
    this.#part("more").hidden = true;
    this.#setCounts({ unread_count: 0, unseen_count: 0 });
  }

  // ---- server -----------------------------------------------------------------------------

  #url(path) {
    const base = (this.getAttribute("api") || "").replace(/\/+$/, "");
    return `${base}/v1/users/${encodeURIComponent(this.getAttribute("user"))}${path}`;
  }

  async #request(method, path, init = {}) {
    const response = await fetch(this.#url(path), {
      method,
      headers: {
        Authorization: `Bearer ${this.getAttribute("token")}`,
        Accept: "application/json",
      },
      ...init,
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      throw new RequestError(response.status, body?.error?.message || response.statusText);
    }
    return body;
  }

  async #loadPage(cursor) {
    const generation = this.#generation;
    const version = this.#countVersion;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (cursor) query.set("cursor", cursor);
    this.#part("more").disabled = true;
    this.#renderStatus();
    try {
      const page = await this.#request("GET", `/inbox?${query}`);
      if (generation !== this.#generation) return;
      for (const item of page.items) this.#upsert(item, "end");
      if (page.items.length) this.#noteEventId(page.items[0].id);
      this.#cursor = page.next_cursor ?? null;
      this.#loaded = true;
      this.#error = "";
      this.#part("more").hidden = !this.#cursor;
      if (version === this.#countVersion) {
        this.#setCounts({ ...this.#counts, unread_count: page.unread_count });
      }
      this.#renderStatus();
      if (this.isOpen) this.#markVisibleSeen();
    } catch (error) {
      if (generation !== this.#generation) return;
      this.#error = `Could not load notifications (${error.status ?? "network error"}).`;
      this.#renderStatus();
      this.#fail(error);
    } finally {
      this.#part("more").disabled = false;
    }
  }

  // Waits for a short quiet spell, then takes the counts from the server.
  #refreshCount(delay = COUNT_SETTLE_MS) {
    clearTimeout(this.#countTimer);
    const generation = this.#generation;
    this.#countTimer = setTimeout(async () => {
      const version = this.#countVersion;
      try {
        const counts = await this.#request("GET", "/inbox/count");
        if (generation === this.#generation && version === this.#countVersion) {
          this.#setCounts(counts);
        }
      } catch (error) {
        this.#fail(error);
      }
    }, delay);
  }

  async #markVisibleSeen() {
    const generation = this.#generation;
    const unseen = [...this.#items.values()].filter((item) => !item.seen_at).slice(0, PAGE_SIZE);
    if (!unseen.length) return;
    const results = await Promise.allSettled(unseen.map((item) =>
      this.#request("POST", `/inbox/${encodeURIComponent(item.id)}/seen`)));
    if (generation !== this.#generation) return;
    for (const result of results) {
      if (result.status === "fulfilled") this.#upsert(result.value);
    }
    this.#refreshCount(0);
  }

  // ---- real time --------------------------------------------------------------------------

  #connect() {
    const generation = this.#generation;
    const query = new URLSearchParams({ token: this.getAttribute("token") });
    // The browser replays via the Last-Event-ID header only while it retries by itself; a
    // stream we open again ourselves has to ask for the replay in the query.
    if (this.#lastEventId) query.set("last_event_id", this.#lastEventId);
    const source = new EventSource(this.#url(`/stream?${query}`));
    this.#source = source;
    this.dataset.stream = "connecting";
    let opened = false;

    source.addEventListener("open", () => {
      this.dataset.stream = "open";
      this.#retryDelay = FIRST_RETRY_MS;
      // After a gap, reads made elsewhere meanwhile are only visible in the count.
      if (opened || this.#loaded) this.#refreshCount(0);
      opened = true;
    });
    source.addEventListener("notification", (event) => {
      const item = parseJSON(event.data);
      if (!item?.id) return;
      this.#noteEventId(event.lastEventId || item.id);
      const isNew = !this.#items.has(item.id);
      this.#upsert(item, "start");
      if (isNew) {
        this.#emit("tidings:notification", { item });
        this.#refreshCount();
      }
    });
    source.addEventListener("inbox", (event) => {
      const counts = parseJSON(event.data);
      if (counts && typeof counts.unread_count === "number") this.#setCounts(counts);
    });
    source.addEventListener("error", () => {
      // CONNECTING means the browser is already retrying (with Last-Event-ID). CLOSED means it
      // gave up for good (an HTTP error, a proxy's wrong content type): retry ourselves, slower
      // each time, with jitter so a restarted server is not hit by every tab at once.
      if (generation !== this.#generation) return;
      this.dataset.stream = source.readyState === EventSource.CLOSED ? "closed" : "connecting";
      if (source.readyState !== EventSource.CLOSED) return;
      source.close();
      this.#source = null;
      const delay = this.#retryDelay * (0.5 + Math.random() / 2);
      this.#retryDelay = Math.min(this.#retryDelay * 2, MAX_RETRY_MS);
      this.#retryTimer = setTimeout(() => {
        if (generation === this.#generation) this.#connect();
      }, delay);
    });
  }

  // Ids are time-ordered strings, so the greatest one seen is where a replay must start.
  #noteEventId(id) {
    if (id && id > this.#lastEventId) this.#lastEventId = id;
  }

  // ---- rendering --------------------------------------------------------------------------

  #part(name) {
    return this.#root.querySelector(`[part="${name}"]`);
  }

  #upsert(item, where = "start") {
    const merged = { ...this.#items.get(item.id), ...item };
    this.#items.set(item.id, merged);
    let node = this.#nodes.get(item.id);
    if (!node) {
      node = createItemNode();
      this.#nodes.set(item.id, node);
      const list = this.#part("list");
      if (where === "start") list.prepend(node);
      else list.append(node);
    }
    fillItemNode(node, merged);
    this.#renderStatus();
  }

  // One line under the list: an error wins, then loading, then the empty inbox.
  #renderStatus() {
    let text = this.#error;
    if (!text && !this.#items.size) text = this.#loaded ? "No notifications yet." : "Loading…";
    const status = this.#part("status");
    status.textContent = text;
    status.hidden = !text;
  }

  #setCounts(counts) {
    const next = {
      unread_count: Math.max(0, counts.unread_count ?? 0),
      unseen_count: Math.max(0, counts.unseen_count ?? this.#counts.unseen_count ?? 0),
    };
    const changed = next.unread_count !== this.#counts.unread_count
      || next.unseen_count !== this.#counts.unseen_count;
    this.#counts = next;
    this.#countVersion += 1;
    const unread = next.unread_count;
    const badge = this.#part("badge");
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.dataset.count = String(unread);
    badge.hidden = unread === 0;
    this.#part("bell").setAttribute("aria-label",
      unread ? `Notifications, ${unread} unread` : "Notifications, none unread");
    this.#part("mark-all").disabled = unread === 0;
    if (changed) this.#emit("tidings:count", next);
  }

  #refreshTimes() {
    for (const [id, node] of this.#nodes) {
      node.querySelector("time").textContent = timeAgo(this.#items.get(id).created_at);
    }
  }

  #onListClick(event) {
    const node = event.target.closest('[data-testid="item"]');
    // A click on the action link navigates as links do; markRead's keepalive outlives the page.
    if (node) this.markRead(node.dataset.id);
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  #fail(error) {
    this.#emit("tidings:error", { status: error.status ?? 0, message: error.message });
  }

  // ---- Web Push ---------------------------------------------------------------------------

  // Service workers and push need a secure context: https, or http://localhost.
  get pushSupported() {
    return window.isSecureContext && "serviceWorker" in navigator && "PushManager" in window &&
      "Notification" in window;
  }

  #serviceWorkerUrl() {
    const base = (this.getAttribute("api") || "").replace(/\/+$/, "");
    return this.getAttribute("service-worker") || `${base}/web/sw.js`;
  }

  // The button shows unless push is impossible, refused, or this browser is already subscribed.
  async #offerPush() {
    const button = this.#part("push");
    button.hidden = true;
    if (!this.pushSupported || Notification.permission === "denied") return;
    try {
      const registration = await navigator.serviceWorker.getRegistration(this.#serviceWorkerUrl());
      if (registration && (await registration.pushManager.getSubscription())) {
        this.dataset.push = "on";
        return;
      }
    } catch {
      // No registration can be looked up here (another origin's worker): offer it anyway.
    }
    button.hidden = false;
  }

  // Ask permission, register the service worker, subscribe with the server's VAPID key and
  // register the subscription as one of the user's devices.
  async subscribePush() {
    const button = this.#part("push");
    button.disabled = true;
    try {
      const permission = await Notification.requestPermission();
      if (permission !== "granted") {
        button.hidden = permission === "denied";
        return;
      }
      const registration = await activated(
        await navigator.serviceWorker.register(this.#serviceWorkerUrl()),
      );
      let subscription = await registration.pushManager.getSubscription();
      if (!subscription) {
        const base = (this.getAttribute("api") || "").replace(/\/+$/, "");
        const answer = await fetch(`${base}/v1/webpush/vapid-public-key`);
        if (!answer.ok) throw new RequestError(answer.status, "no VAPID public key");
        const { public_key: key } = await answer.json();
        subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: fromBase64Url(key),
        });
      }
      await this.#request("POST", "/devices", {
        headers: {
          Authorization: `Bearer ${this.getAttribute("token")}`,
          Accept: "application/json",
          "Content-Type": "application/json",
        },
        body: JSON.stringify({ provider: "webpush", subscription: subscription.toJSON() }),
      });
      button.hidden = true;
      this.dataset.push = "on";
      this.#emit("tidings:push", { endpoint: subscription.endpoint });
    } catch (error) {
      this.#fail(error);
    } finally {
      button.disabled = false;
    }
  }
}

async function activated(registration) {
  const worker = registration.installing || registration.waiting;
  if (registration.active || !worker) return registration;
  await new Promise((resolve) => {
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated") resolve();
    });
  });
  return registration;
}

function fromBase64Url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function createItemNode() {
  const node = document.createElement("li");
  node.setAttribute("part", "item");
  node.dataset.testid = "item";
  node.innerHTML = `<button class="main" part="item-button" type="button">
      <span class="dot" aria-hidden="true"></span>
      <span><span class="sr" data-unread>Unread: </span><span class="title" part="title"></span>
      <span class="body" part="body"></span><time part="time"></time></span>
    </button>`;
  return node;
}

// Text only, never HTML: titles and bodies are whatever the sender put in them.
function fillItemNode(node, item) {
  node.dataset.id = item.id;
  node.dataset.read = String(Boolean(item.read_at));
  node.querySelector("[data-unread]").hidden = Boolean(item.read_at);
  node.querySelector(".title").textContent = item.title ?? "";
  node.querySelector(".body").textContent = item.body ?? "";
  const time = node.querySelector("time");
  time.dateTime = item.created_at ?? "";
  time.title = item.created_at ? new Date(item.created_at).toLocaleString() : "";
  time.textContent = item.created_at ? timeAgo(item.created_at) : "";
  const href = item.action_url ? safeHref(item.action_url) : null;
  let link = node.querySelector('[part="action"]');
  if (href && !link) {
    link = document.createElement("a");
    link.setAttribute("part", "action");
    link.dataset.testid = "action";
    link.textContent = "Open";
    node.append(link);
  }
  if (href) link.href = href;
  else link?.remove();
}

if (!customElements.get("tidings-inbox")) customElements.define("tidings-inbox", TidingsInbox);
