"""Hook registration: declare hooks in hooks.toml, make the store's /v3/hooks match, and check health."""
