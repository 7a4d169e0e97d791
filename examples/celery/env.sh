# Where the book, the broker and the rules are: source this file (`. ./env.sh`) in every
# shell that runs a worker or a coordinator. Change the defaults to your own services.
export ARFLOW_DB="${ARFLOW_DB:-postgresql+psycopg://postgres@127.0.0.1:5432/arflow}"
export ARFLOW_CELERY_BROKER="${ARFLOW_CELERY_BROKER:-redis://127.0.0.1:6379/0}"
# rule files or folders, separated by ':' (empty: the shipped default pack)
export ARFLOW_RULES="${ARFLOW_RULES:-}"
export ARFLOW_QUEUE="${ARFLOW_QUEUE:-arflow.runs}"
