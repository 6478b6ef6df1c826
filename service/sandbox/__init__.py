"""An emulated BigCommerce store: REST API, OAuth scopes, rate limits, /v3/hooks and signed deliveries.

It imports nothing from the receiver or the workers, so that it can never agree with a bug in them.
"""
