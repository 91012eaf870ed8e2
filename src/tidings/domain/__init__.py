"""Plain data and pure rules: no framework, database or broker is imported here."""
