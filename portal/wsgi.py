"""WSGI entry point."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

from portal.heap import startup_objects_freeze

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = get_wsgi_application()
# Import the URLconf and every view now, not in the first request, and freeze them with the rest.
get_resolver().url_patterns  # noqa: B018 - loading it is the point
startup_objects_freeze()
