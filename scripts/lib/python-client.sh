# shellcheck shell=bash
# The Python package `omnipanel` (clients/python): checks that its
# generated stubs match proto/, type-checks it (mypy --strict), builds the
# wheel and sdist into target/python/, installs the wheel into a fresh
# virtualenv and runs the pytest suite with that venv's python against the
# real agent and the Ollama double (binaries from $OMNIPANEL_BIN_DIR,
# default target/debug). Sourced by scripts/test; needs setup.sh's ROOT,
# CACHE, say, die and need_packages.

# python_dev_venv: the virtualenv with the pinned generator, build and test
# tools, cached in $CACHE per hash of requirements-dev.txt and the Python
# version (a venv is tied to its interpreter); prints its path.
python_dev_venv() {
    local reqs="$ROOT/clients/python/requirements-dev.txt" key venv
    key="$( (cat "$reqs"; python3 --version) | sha256sum | cut -c1-16)"
    venv="$CACHE/python-client-$key"
    if [ ! -f "$venv/.complete" ]; then
        say "installing the Python client's dev tools into $venv"
        rm -rf "$venv"
        mkdir -p "$CACHE"
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs" >&2
        # Marks a finished install, so an interrupted one is redone.
        touch "$venv/.complete"
    fi
    echo "$venv"
}

test_python_client() {
    command -v python3 >/dev/null || need_packages python3
    python3 -c 'import venv, ensurepip' 2>/dev/null || need_packages python3-venv
    # The TLS test makes its certificate with the openssl command.
    command -v openssl >/dev/null || need_packages openssl
    local src="$ROOT/clients/python" out="$ROOT/target/python" dev fresh wheel bin_dir
    bin_dir="${OMNIPANEL_BIN_DIR:-$(cargo_target_dir)/debug}"
    dev="$(python_dev_venv)"

    say "Python client: generated stubs up to date with proto/"
    "$dev/bin/python" "$src/scripts/gen.py" --check

    say "Python client: mypy --strict (package, examples, tests)"
    (cd "$src" && MYPYPATH=src:tests "$dev/bin/python" -m mypy --strict src/omnipanel examples tests)

    say "Python client: building the wheel and sdist into target/python"
    rm -rf "$out" && mkdir -p "$out"
    # No isolation: the build backend comes from the pinned dev venv, so
    # the build runs offline.
    "$dev/bin/python" -m build --no-isolation --wheel --sdist --outdir "$out" "$src" >/dev/null
    wheel="$(ls "$out"/omnipanel-*.whl)"

    say "Python client: installing the wheel into a fresh virtualenv"
    fresh="$(mktemp -d)"
    python3 -m venv "$fresh/venv"
    "$fresh/venv/bin/pip" install -q --disable-pip-version-check "$wheel" \
        "$(grep '^pytest==' "$src/requirements-dev.txt")" >&2
    # The package under test must be the installed wheel, never src/.
    (cd "$src/tests" && "$fresh/venv/bin/python" -c '
import omnipanel, sys
if "site-packages" not in omnipanel.__file__:
    sys.exit(f"omnipanel was imported from {omnipanel.__file__}, not from the installed wheel")
')

    say "Python client: pytest against the real agent ($bin_dir)"
    (cd "$src" && OMNIPANEL_BIN_DIR="$bin_dir" "$fresh/venv/bin/python" -m pytest -q -p no:cacheprovider tests)
    rm -rf "$fresh"
}
