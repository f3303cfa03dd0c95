# Shared helpers for the scripts. Source it; it sets ROOT and strict mode.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=x86_64-unknown-linux-musl
# The Windows restore agent (pe/agent-windows, inplace.exe).
WIN_TARGET=x86_64-pc-windows-gnu
PE_DIR=$ROOT/target/pe
CACHE_DIR=${INPLACE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/inplace}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root (directly, or through sudo).
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Source the rustup environment when cargo is not on PATH yet.
ensure_cargo_path() {
    command -v cargo >/dev/null 2>&1 || { [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"; } || true
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup first"
}
