# Sourced by scripts/demo and scripts/test: make (once) and refresh a virtualenv for this checkout.
# usage: ensure_venv DIR PIP-REQUIREMENT...
ensure_venv() {
  local venv=$1
  shift
  local python=${PYTHON:-python3}
  if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    "$python" -m venv "$venv"
  fi
  local log="$venv/install.log"
  # pip's output goes to a log; it is shown only when the install fails.
  if ! { "$venv/bin/python" -m pip install --upgrade pip && "$venv/bin/python" -m pip install "$@"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "installing into $venv failed (log above)" >&2
    return 1
  fi
}
