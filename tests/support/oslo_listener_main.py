"""An unmodified oslo.messaging notification listener, run by tests/support/notifications.py.

Runs under .venv-clients' Python (deploy/dev/clients.sh), never imported by the tests:
usage: oslo_listener_main.py TRANSPORT_URL EXCHANGE TOPIC OUTPUT_FILE. Every notification
it receives is appended to OUTPUT_FILE as one JSON line, as its endpoint was handed it.
"""

import json
import signal
import sys
import threading

import oslo_messaging
from oslo_config import cfg

PRIORITIES = ("audit", "critical", "debug", "error", "info", "sample", "warn")


class Endpoint:
    """Writes each notification down, whatever its priority."""

    def __init__(self, output):
        self.output = output
        self.lock = threading.Lock()

    def record(self, priority, ctxt, publisher_id, event_type, payload, metadata):
        line = {
            "priority": priority,
            "publisher_id": publisher_id,
            "event_type": event_type,
            "payload": payload,
            "metadata": metadata,
        }
        with self.lock:
            self.output.write(json.dumps(line) + "\n")
            self.output.flush()


def _method(priority):
    def handle(self, ctxt, publisher_id, event_type, payload, metadata):
        self.record(priority, ctxt, publisher_id, event_type, payload, metadata)

    return handle


for _priority in PRIORITIES:
    setattr(Endpoint, _priority, _method(_priority))


def main():
    url, exchange, topic, path = sys.argv[1:5]
    conf = cfg.ConfigOpts()
    conf([])
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    target = oslo_messaging.Target(exchange=exchange, topic=topic)
    with open(path, "a") as output:
        listener = oslo_messaging.get_notification_listener(
            transport, [target], [Endpoint(output)], executor="threading"
        )
        # One handler thread: the threading executor's pool would otherwise run handlers
        # at once and write two close notifications in either order (the tests check
        # the order in which they were delivered).
        listener.start(override_pool_size=1)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        print("listening", flush=True)
        while not stop.wait(0.2):
            pass
        listener.stop()
        listener.wait()
    transport.cleanup()


if __name__ == "__main__":
    main()
