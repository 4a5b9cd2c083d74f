#!/usr/bin/env bash
# Create benchmarks/peers/.venv-uplift with scikit-uplift 0.5.1 and CausalML 0.18.0, the two peer
# implementations of the uplift metrics that tests/evaluate/data/uplift_reference.json is made from.
#
# Neither library may be a project dependency (scikit-uplift is unmaintained, CausalML pulls in
# xgboost, lightgbm, shap and statsmodels), so they live in their own venv:
#   * scikit-uplift 0.5.1 - the last release (2022); its metrics still run on numpy 2 / pandas 3.
#   * causalml 0.18.0     - latest release with a cp311 wheel; `causalml.metrics` is all we use.
#   * scikit-learn 1.9.1  - scikit-uplift calls `sklearn.utils.extmath.stable_cumsum`, deprecated in
#                           1.8 and announced for removal in 1.10, so the pin keeps it below 1.10.
#   * numpy 2.4.6, pandas 3.1.1, scipy 1.17.1 - the versions these were verified with, pinned so the
#                           reference file can be regenerated bit for bit.
# The venv is about 1.6 GB (xgboost brings nvidia-nccl-cu12 with it on Linux).
#
# Idempotent: if the venv already imports both libraries at the pinned versions, nothing is done.
# Usage: bash benchmarks/peers/setup_uplift.sh   (PYTHON=python3.11 to pick the interpreter)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${UPLIFT_VENV:-$HERE/.venv-uplift}"
PYTHON="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'PY' 2>/dev/null
from importlib.metadata import version
want = {"scikit-uplift": "0.5.1", "causalml": "0.18.0", "scikit-learn": "1.9.1",
        "numpy": "2.4.6", "pandas": "3.1.1"}
for name, pinned in want.items():
    assert version(name) == pinned, (name, version(name))
from sklift.metrics import qini_auc_score  # noqa: F401
from causalml.metrics import get_qini  # noqa: F401
PY
then
    echo "uplift peer venv ready: $VENV"
    exit 0
fi

echo "Creating uplift peer venv in $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade "pip<25"
"$VENV/bin/python" -m pip install --quiet \
    "scikit-uplift==0.5.1" \
    "causalml==0.18.0" \
    "scikit-learn==1.9.1" \
    "numpy==2.4.6" \
    "pandas==3.1.1" \
    "scipy==1.17.1"
"$VENV/bin/python" -c "from importlib.metadata import version as v; print(*(f'{p} {v(p)}' for p in ('scikit-uplift', 'causalml', 'scikit-learn', 'numpy', 'pandas')), sep=', ')"
