"""bcwebhooks: receive BigCommerce webhooks, persist them, and process them in Dramatiq workers."""

__version__ = "0.1.0"
