# Sourced by scripts/test.sh: Open MPI's `mpirun` for the test of a real MPI job
# (tests/integration/test_distributed_jobs.py). Uses the one on PATH; otherwise
# installs Debian's `openmpi-bin` package (root needed, as in CI).
ensure_mpirun() {
    if command -v mpirun >/dev/null 2>&1; then
        return 0
    fi
    ensure_debian_package mpirun "the real mpirun job test" openmpi-bin
}
