#!/usr/bin/env bash
# A Celery worker for distributed runs: ./worker.sh [PROCESSES] (default 2). Start as many
# as you like, on this machine or others that reach the broker and the database.
set -euo pipefail
cd "$(dirname "$0")"
. ./env.sh
exec celery -A arflow.engine.distributed worker -Q "$ARFLOW_QUEUE" \
  --concurrency "${1:-2}" -n "arflow-$$@%h" -l info
