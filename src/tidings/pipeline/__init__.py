"""The stages a notification passes through: accept, relay, route, deliver; and the realtime hub."""
