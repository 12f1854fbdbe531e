# shellcheck shell=bash
# Sourced by scripts/test and scripts/lab: one place that knows how to make the project's virtualenv.
#
#   source scripts/_venv.sh
#   ensure_venv [EXTRAS]     # EXTRAS defaults to "test,postgres", e.g. ensure_venv "test,postgres,hub"
#
# ensure_venv creates .venv with `python3 -m venv` if it is missing, installs the project into it in
# editable mode with EXTRAS, and puts .venv/bin first on PATH (so tests and demos that start
# `jupyter-2fa`, `jupyter` or `python` as subprocesses get the project's copies). The install is skipped
# when a stamp file for the same EXTRAS is newer than pyproject.toml, so a second run costs nothing.

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
        *":${JUPYTER_2FA_VENV}/bin:"*) ;;
        *) export PATH="${JUPYTER_2FA_VENV}/bin:${PATH}" ;;
    esac
}
