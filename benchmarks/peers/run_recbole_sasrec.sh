#!/usr/bin/env bash
# One command: set up the RecBole venv (skipped when present) and run the SASRec peer benchmark.
# Extra arguments go to recbole_sasrec.py, e.g.  bash benchmarks/peers/run_recbole_sasrec.sh --max-minutes 12
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$HERE/setup_recbole.sh"
exec "${RECBOLE_VENV:-$HERE/.venv-recbole}/bin/python" "$HERE/recbole_sasrec.py" "$@"
