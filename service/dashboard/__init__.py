"""The operations dashboard: `GET /dashboard` on the receiver (routes.py, state.py, templates/, static/)."""

from service.dashboard.routes import Dashboard as Dashboard
