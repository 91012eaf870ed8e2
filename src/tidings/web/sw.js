// Tidings' service worker for Web Push: shows each push as a notification, and on a click
// focuses a window already showing its action_url or opens one.
//
// The push body is the JSON Tidings encrypts for the subscription:
// {title, body, data, notification_id, delivery_id}; data.action_url (or data.url) is where a
// click leads. Served at /web/sw.js with `Service-Worker-Allowed: /`, so a page on the
// Tidings origin may register it at scope "/". Pages on another origin copy this file to
// their own origin: a service worker must come from the origin of the page registering it.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function parse(event) {
  if (!event.data) return {};
  try {
    return event.data.json();
  } catch {
    return { body: event.data.text() };
  }
}

self.addEventListener("push", (event) => {
  const message = parse(event);
  const data = message.data && typeof message.data === "object" ? message.data : {};
  const title = message.title || "New notification";
  const options = {
    body: message.body || "",
    // One notification per Tidings notification, even if a push arrives twice.
    tag: message.notification_id || undefined,
    data: {
      url: data.action_url || data.url || message.action_url || null,
      notification_id: message.notification_id || null,
    },
  };
  if (data.icon) options.icon = data.icon;
  event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data && event.notification.data.url;
  if (!url) return;
  const target = new URL(url, self.location.origin).href;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = windows.find((client) => client.url === target);
      if (open) return open.focus();
      return self.clients.openWindow(target);
    })(),
  );
});
