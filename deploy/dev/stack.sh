#!/usr/bin/env bash
# One command to a running imgworker on this machine's PostgreSQL and RabbitMQ: its own
# database, a configuration with the guide's three stores (central, dcn0, dcn1), `imgworker
# api`, a worker, and a sample image to import. See deploy/dev/stack.py.
#
#   eval "$(deploy/dev/stack.sh up)"   # start it; the exports point glance/openstack at it
#   deploy/dev/stack.sh down [--purge] # stop what up started (--purge: drop its database too)
#   deploy/dev/stack.sh                # in the foreground, until Ctrl-C
#
# Standard output carries only the export lines; everything else goes to standard error.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [ "${1:-}" != down ]; then
  deploy/dev/bootstrap.sh >&2
  deploy/dev/clients.sh >&2
fi
exec .venv/bin/python deploy/dev/stack.py "$@"
