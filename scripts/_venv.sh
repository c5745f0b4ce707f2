# Sourced by scripts/*.sh: create .venv once and install this project with the given extra.
# usage: install_into_venv EXTRA
install_into_venv() {
    local python="${PYTHON:-python3}"
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    # setuptools' notice that an editable install is one (ten lines, every install)
    PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install --quiet -e ".[$1]"
}
