# Shared set-up for scripts/test and scripts/demo (sourced, not run).
#
# One build cache outside the clone, reused by every clone on this machine: the bundled DuckDB
# C++ library takes ~20 minutes to build from clean, seconds once cached.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  if mkdir -p /var/cache/talkhouse/target 2>/dev/null && [ -w /var/cache/talkhouse/target ]; then
    export CARGO_TARGET_DIR=/var/cache/talkhouse/target
  else
    export CARGO_TARGET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/talkhouse/target"
    mkdir -p "$CARGO_TARGET_DIR"
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed" >&2
  echo "hint: install Rust stable with rustup, then run this again" >&2
  exit 2
fi
