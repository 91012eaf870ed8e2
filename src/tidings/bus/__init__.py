"""Internal pub/sub that carries realtime events to whichever process holds a user's sockets."""
