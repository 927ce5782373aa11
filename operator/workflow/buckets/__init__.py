"""buckets: the work queue service of workflow, with an HTTP API.

``create_app`` (``app``) assembles the ASGI application: ``routes`` holds
one router per topic, ``guards`` and ``auth`` the token checks, ``openapi``
the API's prose and shapes, ``error_replies`` how errors are answered,
``limits`` the body size, ``bodies`` and ``documents`` input checking,
``queries`` Mongo-style filters to SQL; ``stores`` holds the SQLite and
PostgreSQL stores; ``settings`` its configuration and ``serving`` the uvicorn
runner.
"""

from workflow.buckets.app import create_app
from workflow.buckets.settings import BucketsSettings

__all__ = ["BucketsSettings", "create_app"]
