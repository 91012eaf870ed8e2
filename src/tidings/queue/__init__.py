"""Durable job queues: a Queue protocol and one implementation per technology."""
