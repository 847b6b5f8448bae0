# Sourced by scripts/run and scripts/test: make `uv` available and the environment match uv.lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if command -v uv >/dev/null 2>&1; then
  UV=(uv)
else
  if ! python3 -m uv --version >/dev/null 2>&1; then
    echo "installing uv (the project's package manager) from PyPI ..." >&2
    python3 -m pip install --quiet --user uv 2>/dev/null \
      || python3 -m pip install --quiet --user --break-system-packages uv
  fi
  UV=(python3 -m uv)
fi

# Trust the system's certificate store (a TLS-inspecting proxy's CA lives there, not in uv's
# bundled roots).
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}"

# Exactly the locked versions, with the dev group (the local stack) and the agent extra; a
# no-op when nothing changed.
"${UV[@]}" sync --frozen --all-extras --quiet

# Every Dagster run is a fresh Python process that imports Dagster, boto3 and SQLAlchemy. With
# PYTHONDONTWRITEBYTECODE set (some machines and CI hosts set it) each of them would compile
# those from source again: about twice the suite's time. Keep bytecode under .venv instead, out
# of the source tree.
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="${PYTHONPYCACHEPREFIX:-$PWD/.venv/pycache}"
