# Shared set-up for scripts/test, scripts/run and .ci/run (sourced, not executed).
# Creates .venv with Python >= 3.11 (again when its interpreter is missing or broken) and
# makes it exactly the lock, requirements/test.txt (both distributions, pyqueue-bull and
# bookwish-jobs, editable, with every extra and the test tools), whenever the lock or a
# pyproject.toml changed since the last install. uv (pinned in requirements/uv.txt,
# installed into the venv by pip) does the install: it checks the lock's hashes and, like
# a user's machine, reads no pip configuration. Tools always run as `.venv/bin/python -m TOOL`, never through console-script
# wrappers, whose shebangs can point at another checkout's interpreter.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3 python; do
        [[ -n "$candidate" ]] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "need Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

venv_ok() {  # the venv's interpreter runs, is >= 3.11, and really is this venv's
    [[ -x .venv/bin/python ]] || return 1
    .venv/bin/python - "$root/.venv" <<'PY' >/dev/null 2>&1
import os, sys
ok = sys.version_info >= (3, 11) and os.path.realpath(sys.prefix) == os.path.realpath(sys.argv[1])
sys.exit(0 if ok else 1)
PY
}

ensure_venv() {
    local py
    if ! venv_ok; then
        py="$(pick_python)" || return 1
        if [[ -e .venv ]]; then
            echo ".venv is broken or made for another Python; recreating it with $py" >&2
            rm -rf .venv
        else
            echo "creating .venv with $py" >&2
        fi
        "$py" -m venv .venv
    fi
}

install_stamp() {  # what the installed environment was made from
    cat requirements/test.txt pyproject.toml apps/bookwish-jobs/pyproject.toml \
        | .venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}

ensure_uv() {  # ensure_uv <python>: the pinned uv (requirements/uv.txt) in that venv
    local py="$1" want
    want="$(sed -n 's/^uv==//p' requirements/uv.txt)"
    if [[ "$("$py" -m uv --version 2>/dev/null | cut -d' ' -f2)" != "$want" ]]; then
        "$py" -m pip install --disable-pip-version-check -q -r requirements/uv.txt >&2
    fi
}

ensure_install() {  # .venv = the lock (requirements/test.txt): both distributions, editable
    local stamp=".venv/.pyqueue-install" want log
    ensure_venv || return 1
    want="$(install_stamp)"
    if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]] \
        || ! .venv/bin/python -c 'import pyqueue, bookwish_jobs, sys; sys.exit(not all(m.__file__.startswith(sys.argv[1]) for m in (pyqueue, bookwish_jobs)))' "$root/src/" >/dev/null 2>&1; then
        echo "uv pip sync requirements/test.txt" >&2
        log="$(mktemp)"
        if ! { ensure_uv .venv/bin/python \
            && .venv/bin/python -m uv pip sync --python .venv/bin/python requirements/test.txt \
            && .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements/uv.txt; \
            } >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            return 1
        fi
        rm -f "$log"
        echo "$want" >"$stamp"
    fi
}

npm_ci_if_stale() {  # npm_ci_if_stale <dir> <what needs it>: npm ci when missing or stale
    local node_dir="$1" what="$2"
    if [[ ! -f $node_dir/node_modules/.package-lock.json \
        || $node_dir/package-lock.json -nt $node_dir/node_modules/.package-lock.json ]]; then
        if command -v npm >/dev/null 2>&1; then
            echo "npm ci --prefix $node_dir" >&2
            npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error >&2
        else
            echo "npm not found; $what will fail" \
                "(install Node.js >= 18, or set PYQUEUE_SKIP_INTEROP=1)" >&2
        fi
    fi
}

ensure_node_bull() {  # Node Bull for the interop tests and the BookWish Node app's tests
    [[ "${PYQUEUE_SKIP_INTEROP:-}" != 1 ]] || return 0
    npm_ci_if_stale tests/interop/node "the interop tests"
    npm_ci_if_stale tests/bullmq/node "the BullMQ interop tests"
    npm_ci_if_stale tests/bookwish_jobs/node "bookwish_jobs' Node-app tests"
}

ensure_chromium() {  # Debian's Chromium for the dashboard's browser tests, when missing
    # Playwright's and Selenium's own browser downloads cannot work on a closed network.
    [[ -x "${PYQUEUE_CHROMIUM:-/usr/bin/chromium}" ]] && return 0
    local as_root=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            as_root=(sudo)
        else
            echo "chromium not found and not root: the browser tests will fail" \
                "(apt-get install chromium chromium-driver, or set PYQUEUE_CHROMIUM)" >&2
            return 0
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "chromium not found and no apt-get: the browser tests will fail" \
            "(install Chromium, or set PYQUEUE_CHROMIUM=/path/to/chromium)" >&2
        return 0
    fi
    echo "apt-get install chromium chromium-driver" >&2
    if ! { "${as_root[@]}" apt-get update -qq \
        && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends chromium chromium-driver; } >&2; then
        echo "could not install chromium: the browser tests will fail" >&2
    fi
}

ensure_promtool() {  # Debian's prometheus package, for promtool (the alert rules' checks)
    # deploy/prometheus's rules are checked and unit-tested with promtool in CI.
    command -v "${PYQUEUE_PROMTOOL:-promtool}" >/dev/null 2>&1 && return 0
    local as_root=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            as_root=(sudo)
        else
            echo "promtool not found and not root: the alert-rule tests will fail" \
                "(apt-get install prometheus, or set PYQUEUE_PROMTOOL)" >&2
            return 0
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "promtool not found and no apt-get: the alert-rule tests will fail" \
            "(install Prometheus's promtool, or set PYQUEUE_PROMTOOL=/path/to/promtool)" >&2
        return 0
    fi
    echo "apt-get install prometheus (for promtool)" >&2
    if ! { "${as_root[@]}" apt-get update -qq \
        && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends prometheus; } >&2; then
        echo "could not install prometheus: the alert-rule tests will fail" >&2
    fi
}
