# Sourced by scripts/start, scripts/test and scripts/lock: make .venv hold exactly the versions
# in the given lock file (hashes checked), then the project itself, editable, without touching
# the network again. Reinstalls only when the lock file, pyproject.toml or this script changed.
# usage: . scripts/_venv.sh requirements/dev.txt [--deps-only]
_lock=$1
_deps_only=${2:-}
_py=${PYTHON:-python3.11}
command -v "$_py" >/dev/null 2>&1 || _py=python3
[ -x .venv/bin/python ] || "$_py" -m venv .venv
_stamp=$(cat "$_lock" pyproject.toml scripts/_venv.sh | sha256sum | cut -c1-16)
if [ "$(cat .venv/.installed-lock 2>/dev/null)" != "$_stamp" ]; then
  .venv/bin/python -m pip install -q --require-hashes -r "$_lock"
  if [ -z "$_deps_only" ]; then
    .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
    # `bot serve` and `bot worker` run under python -OO (LEAN_BYTECODE): their bytecode is
    # compiled here once, not at every start (where PYTHONDONTWRITEBYTECODE is set, always).
    .venv/bin/python -OO -m compileall -q -j0 .venv/lib bot handlers >/dev/null 2>&1 || true
    echo "$_stamp" > .venv/.installed-lock
  fi
fi
