"""The Store: one database, seen through one small class per concern."""

from __future__ import annotations

from tidings.store.database import Database
from tidings.store.deliveries import DeliveryStore
from tidings.store.inbox import InboxStore
from tidings.store.keys import KeyStore
from tidings.store.notifications import NotificationStore
from tidings.store.stats import StatsStore
from tidings.store.templates import TemplateStore
from tidings.store.users import UserStore
from tidings.store.webhooks import WebhookStore


class Store:
    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.keys = KeyStore(self.db)
        self.users = UserStore(self.db)
        self.inbox = InboxStore(self.db)
        self.notifications = NotificationStore(self.db, self.inbox.write_items)
        self.deliveries = DeliveryStore(self.db, self.notifications)
        self.templates = TemplateStore(self.db)
        self.webhooks = WebhookStore(self.db)
        self.stats = StatsStore(self.db)

    async def ping(self) -> None:
        await self.db.ping()

    async def close(self) -> None:
        await self.db.close()
