"""moto's server (as `python -m moto.server -H HOST -p PORT` runs it), with its requests handled
one at a time. moto's backends are not safe under concurrent requests: a DynamoDB transaction
that fails rolls back by restoring a copy of the whole table taken when it began, undoing or
resurrecting what a concurrent transaction wrote, and copying a table while another request
changes it fails with a 500. Real AWS has neither problem; tests must not see them.
Connections are still served on threads, so a client's idle keep-alive connection never
blocks another's requests.

Usage: python3 tests/moto_server.py HOST PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
app = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()


def serialized(environ, start_response):
    with one_at_a_time:
        return list(app(environ, start_response))


run_simple(host, port, serialized, threaded=True, request_handler=MotoRequestHandler)
