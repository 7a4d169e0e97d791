#!/usr/bin/env bash
# Run one day on the workers: ./run_day.sh YYYY-MM-DD [SHARDS] (default 4 shards).
set -euo pipefail
cd "$(dirname "$0")"
. ./env.sh
rules=()
IFS=':' read -ra paths <<< "$ARFLOW_RULES"
for p in "${paths[@]}"; do [ -n "$p" ] && rules+=(--rules "$p"); done
exec arflow run --db "$ARFLOW_DB" "${rules[@]}" --as-of "$1" --yes \
  --celery "$ARFLOW_CELERY_BROKER" --shards "${2:-4}" --queue "$ARFLOW_QUEUE"
