#!/usr/bin/env bash
# The whole story on one machine: load the sample book of examples/data into the database
# of $ARFLOW_DB (it must exist and be empty), start a worker of two processes in the
# background, run three days in 4 shards each, stop the worker, list the decisions.
set -euo pipefail
cd "$(dirname "$0")"
. ./env.sh
arflow init --db "$ARFLOW_DB"
arflow import --db "$ARFLOW_DB" ../data/*
celery -A arflow.engine.distributed worker -Q "$ARFLOW_QUEUE" --concurrency 2 \
  -n "arflow-demo-$$@%h" -l warning --without-mingle --without-gossip &
worker=$!
trap 'kill -TERM "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT
for day in 2026-02-10 2026-02-20 2026-03-05; do
  ./run_day.sh "$day" 4
done
arflow decisions list --db "$ARFLOW_DB"
