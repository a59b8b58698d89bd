# Shared by packaging/build-wheels and packaging/test-wheels (sourced, not run).

step() { printf '\n=== %s: %s (at %d s)\n' "$(basename "$0")" "$*" "$SECONDS"; }

# the interpreter of Python $1 (3.10 ...): pyenv's, else python$1 on PATH, else nothing
find_python() {
    local v=$1 c
    for c in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python"$v" \
             "$(command -v "python$v" || true)" "/usr/bin/python$v"; do
        [ -x "$c" ] && "$c" -c "import sys, venv; assert sys.version.startswith('$v.')" \
            2>/dev/null && { echo "$c"; return; }
    done
}
