#!/usr/bin/env bash
# Create benchmarks/peers/.venv-mabwiser with MABWiser 2.7.4 (the latest release on PyPI).
#
# MABWiser 2.7.4 declares only lower bounds (numpy>=1.17, scikit-learn>=0.24, pandas, scipy,
# joblib, seaborn>=0.9). Its releases were tested in the numpy 1.x era, so the set is pinned to
# releases of that era (the same numpy/pandas/scipy/scikit-learn pins as setup_recbole.sh):
#   * numpy 1.26.4 / pandas 2.2.3 - predate numpy 2 and pandas 3 (copy-on-write, new string dtype);
#                                   MABWiser only uses pandas for input type checks.
#   * scipy 1.13.1 / scikit-learn 1.5.2 / joblib 1.4.2 - MABWiser's linear policies use sklearn's
#                                   StandardScaler (only with scale=True) and joblib for fit/predict.
#   * seaborn 0.13.2 / matplotlib 3.9.4 - hard requirements of the wheel, used only by
#                                   mabwiser.simulator, which the LinUCB runner does not import.
#
# Idempotent: if the venv already imports mabwiser 2.7.4 with numpy 1.26.4 and LinUCB runs, nothing is done.
# Usage: bash benchmarks/peers/setup_mabwiser.sh   (PYTHON=python3.11 to pick the interpreter)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${MABWISER_VENV:-$HERE/.venv-mabwiser}"
PYTHON="${PYTHON:-python3}"

# Imports the pinned versions and fits/predicts a tiny LinUCB, so a half-built venv is rebuilt.
check_venv() {
    "$VENV/bin/python" - <<'PY'
import numpy
from mabwiser._version import __version__
from mabwiser.mab import MAB, LearningPolicy
assert __version__ == "2.7.4", __version__
assert numpy.__version__ == "1.26.4", numpy.__version__
mab = MAB(arms=[0, 1], learning_policy=LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0), seed=0)
mab.fit(decisions=numpy.array([0, 1]), rewards=numpy.array([1.0, 1.0]), contexts=numpy.eye(2))
assert mab.predict(numpy.eye(2)) == [0, 1]
PY
}

if [ -x "$VENV/bin/python" ] && check_venv 2>/dev/null; then
    echo "MABWiser venv ready: $VENV"
    exit 0
fi

echo "Creating MABWiser venv in $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet \
    "mabwiser==2.7.4" \
    "numpy==1.26.4" \
    "pandas==2.2.3" \
    "scipy==1.13.1" \
    "scikit-learn==1.5.2" \
    "joblib==1.4.2" \
    "seaborn==0.13.2" \
    "matplotlib==3.9.4"
check_venv
"$VENV/bin/python" -c "import numpy, pandas, sklearn; from mabwiser._version import __version__ as v; print('mabwiser', v, 'numpy', numpy.__version__, 'pandas', pandas.__version__, 'scikit-learn', sklearn.__version__)"
