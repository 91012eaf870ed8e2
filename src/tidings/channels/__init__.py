"""Providers: one file per way of delivering a channel (smtp, webhook, fcm, apns, webpush …)."""
