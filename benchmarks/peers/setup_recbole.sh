#!/usr/bin/env bash
# Create benchmarks/peers/.venv-recbole with RecBole 1.2.1 and a CPU build of torch 2.13.0.
#
# RecBole 1.2.1 (2023) predates numpy 2 and pandas 3:
#   * numpy < 2   - recbole/config/configurator.py re-creates np.float/np.int/... from np.float_ etc.,
#                   which numpy 2 removed; numpy 1.26.4 is the last 1.x release with cp311 wheels.
#   * pandas 2.2  - pandas 3 turns on copy-on-write and a new default string dtype; RecBole's
#                   Dataset code was written against pandas 1.x semantics, 2.2 still behaves that way.
#   * scipy 1.13.1 / scikit-learn 1.5.2 - releases of the numpy 1.x era, pinned so the set is reproducible.
#   * ray 2.6.3   - RecBole requires ray<=2.6.3 (only recbole.quick_start imports it, the runner does not);
#                   protobuf < 5 is the range that ray release was built against (checked with 4.25).
#   * setuptools < 81 - ray 2.6.3 and tensorboard still import pkg_resources.
# torch is pinned exactly to 2.13.0 so pip takes the local CPU wheel and never a CUDA build.
#
# Idempotent: if the venv already imports recbole 1.2.1 and torch 2.13.0, nothing is done.
# Usage: bash benchmarks/peers/setup_recbole.sh   (PYTHON=python3.11 to pick the interpreter)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${RECBOLE_VENV:-$HERE/.venv-recbole}"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'PY' 2>/dev/null
import recbole, torch, numpy
assert recbole.__version__ == "1.2.1", recbole.__version__
assert torch.__version__.startswith("2.13.0"), torch.__version__
assert numpy.__version__.startswith("1."), numpy.__version__
from recbole.model.sequential_recommender import SASRec  # noqa: F401
PY
then
    echo "RecBole venv ready: $VENV"
    exit 0
fi

echo "Creating RecBole venv in $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip<25"
"$VENV/bin/python" -m pip install --quiet \
    "recbole==1.2.1" \
    "torch==2.13.0" \
    "numpy==1.26.4" \
    "pandas==2.2.3" \
    "scipy==1.13.1" \
    "scikit-learn==1.5.2" \
    "ray==2.6.3" \
    "protobuf>=3.20,<5" \
    "setuptools<81"
"$VENV/bin/python" -c "import recbole, torch, numpy, pandas; print('recbole', recbole.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__, 'pandas', pandas.__version__)"
