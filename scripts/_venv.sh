# shellcheck shell=bash
# Sourced by scripts/test and scripts/lab: one place that knows how to make the project's virtualenv.
#
#   source scripts/_venv.sh
#   ensure_venv [EXTRAS]     # EXTRAS defaults to "test,postgres"; scripts/lab asks for "lab" only
#
# ensure_venv creates .venv with `python3 -m venv` if it is missing, installs the project into it in
# editable mode with EXTRAS, and puts .venv/bin first on PATH (so tests and demos that start
# `jupyter-2fa`, `jupyter` or `python` as subprocesses get the project's copies). The install is skipped
# when a stamp file for the same EXTRAS is newer than pyproject.toml, so a second run costs nothing.
#
# ensure_node_tools (scripts/test) installs the Node tools of package.json (configurable-http-proxy, the proxy
# the JupyterHub tests in tests/hub start) into node_modules with `npm ci`, exactly as package-lock.json pins
# them; ensure_venv puts node_modules/.bin on PATH. It runs when the proxy is missing or package-lock.json is
# newer than its stamp.
# Without npm it only warns (`./scripts/lab` needs no Node; the hub tests then skip, or fail under CI=true;
# .ci/run installs Debian's nodejs and npm).
#
# ensure_labextension (scripts/test) builds the JupyterLab extension in labextension/ with JupyterLab's jlpm:
# `jlpm install` (immutable under CI=true: yarn.lock must already be complete) when node_modules is missing or
# older than yarn.lock, `jlpm build:prod` into jupyter_2fa/labextension when a source is newer than the build,
# and links that build into the venv (`jupyter labextension develop`) so `jupyter lab` there serves it.

JUPYTER_2FA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JUPYTER_2FA_VENV="${JUPYTER_2FA_ROOT}/.venv"

ensure_venv() {
    local extras="${1:-test,postgres}"
    local python="${JUPYTER_2FA_VENV}/bin/python"
    local stamp="${JUPYTER_2FA_VENV}/.jupyter-2fa-installed-${extras//,/-}"

    if [[ ! -x "${python}" ]]; then
        echo "Creating ${JUPYTER_2FA_VENV} ..." >&2
        python3 -m venv "${JUPYTER_2FA_VENV}"
        rm -f "${JUPYTER_2FA_VENV}"/.jupyter-2fa-installed-*
    fi
    if [[ ! -f "${stamp}" || "${JUPYTER_2FA_ROOT}/pyproject.toml" -nt "${stamp}" ]]; then
        echo "Installing jupyter-2fa[${extras}] into ${JUPYTER_2FA_VENV} ..." >&2
        # pip refuses nothing as root here, but it would warn about it on every run.
        PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
            "${python}" -m pip install --quiet --upgrade pip
        PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
            "${python}" -m pip install --quiet --editable "${JUPYTER_2FA_ROOT}[${extras}]"
        touch "${stamp}"
    fi

    export VIRTUAL_ENV="${JUPYTER_2FA_VENV}"
    case ":${PATH}:" in
        *":${JUPYTER_2FA_ROOT}/node_modules/.bin:"*) ;;
        *) export PATH="${JUPYTER_2FA_ROOT}/node_modules/.bin:${PATH}" ;;
    esac
    case ":${PATH}:" in
        *":${JUPYTER_2FA_VENV}/bin:"*) ;;
        *) export PATH="${JUPYTER_2FA_VENV}/bin:${PATH}" ;;
    esac
}

ensure_node_tools() {
    local modules="${JUPYTER_2FA_ROOT}/node_modules"
    local lock="${JUPYTER_2FA_ROOT}/package-lock.json"
    local stamp="${modules}/.jupyter-2fa-npm-installed"

    if [[ -x "${modules}/.bin/configurable-http-proxy" && -f "${stamp}" && ! "${lock}" -nt "${stamp}" ]]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "warning: npm not found, so configurable-http-proxy is not installed and the JupyterHub tests" \
            "(tests/hub) cannot run; install the Debian packages 'nodejs npm' (.ci/run does)" >&2
        return 0
    fi
    echo "Installing the Node tools of package-lock.json into ${modules} (npm ci) ..." >&2
    # npm ci deletes node_modules and installs exactly the lock file; it never rewrites the lock.
    (cd "${JUPYTER_2FA_ROOT}" && npm ci --no-audit --no-fund --loglevel=error) || return 1
    touch "${stamp}"
}

ensure_labextension() {
    local source="${JUPYTER_2FA_ROOT}/labextension"
    local built="${JUPYTER_2FA_ROOT}/jupyter_2fa/labextension/install.json"  # the build writes it last
    local installed="${source}/node_modules/.yarn-state.yml"
    local link="${JUPYTER_2FA_VENV}/share/jupyter/labextensions/jupyter-2fa"
    local jlpm="${JUPYTER_2FA_VENV}/bin/jlpm"

    if ! command -v node >/dev/null 2>&1; then
        echo "warning: node not found, so the JupyterLab extension is not built and its tests (tests/labextension," \
            "tests/browser) cannot run; install the Debian packages 'nodejs npm' (.ci/run does)" >&2
        return 0
    fi
    if [[ ! -f "${installed}" || "${source}/yarn.lock" -nt "${installed}" \
        || "${source}/package.json" -nt "${installed}" ]]; then
        echo "Installing the Lab extension's Node dependencies (jlpm install) ..." >&2
        # Under CI=true yarn.lock must not change (yarn's default there too): a stale lock fails the build here.
        local immutable=()
        case "${CI:-}" in true | TRUE | True | 1 | yes) immutable=(--immutable) ;; esac
        (cd "${source}" && "${jlpm}" install "${immutable[@]}") || return 1
        touch "${installed}"
    fi
    if [[ ! -f "${built}" ]] || [[ -n "$(find "${source}/src" "${source}/schema" "${source}/style" \
        "${source}/package.json" -newer "${built}" -print -quit)" ]]; then
        echo "Building the Lab extension (jlpm build:prod) ..." >&2
        (cd "${source}" && PATH="${JUPYTER_2FA_VENV}/bin:${PATH}" "${jlpm}" build:prod) || return 1
    fi
    if [[ "$(readlink "${link}" 2>/dev/null)" != "${JUPYTER_2FA_ROOT}/jupyter_2fa/labextension" ]]; then
        # An editable install copies the build once; a link keeps the venv's Lab on the latest build.
        "${JUPYTER_2FA_VENV}/bin/jupyter-labextension" develop --overwrite "${JUPYTER_2FA_ROOT}" >/dev/null || return 1
    fi
}
