#!/usr/bin/env bash
# Tests the per-user tarball (scripts/package --formats tarball) as a user
# meets it: unpacked and installed with its install.sh --start-at-login into
# a fresh, empty HOME (with a space in its path) and nothing of the caller's
# environment; checks every file it should write and what they point at;
# starts the installed agent and asks the installed CLI for its status,
# start at login and update status (a tarball install updates itself: no
# package marker); then runs the installed uninstall.sh, which must stop
# the agent and remove every file it installed while keeping the user's
# data.
#
#   tests/package/check-tarball.sh target/packages/omnipanel_X.Y.Z_linux-x86_64.tar.gz VERSION
set -euo pipefail
tarball="$(realpath "${1:?usage: check-tarball.sh TARBALL VERSION}")"
version="${2:?usage: check-tarball.sh TARBALL VERSION}"
# Generous: a cold start on a loaded 2-core CI machine (tests/lib.rs PATIENCE).
patience=120

fail() { printf 'check-tarball: %s\n' "$*" >&2; exit 1; }

work="$(mktemp -d)"
home="$work/fresh home"
agent_pid=""
cleanup() {
    if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
        kill "$agent_pid" 2>/dev/null || true
        wait "$agent_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$home" "$work/runtime" "$work/unpacked"
chmod 700 "$work/runtime"

# Only what a login session would have: no XDG_* beyond the runtime folder,
# no OMNIPANEL_*; Ollama pointed at a port nothing listens on, so a real
# one on this machine is never adopted.
as_user() {
    env -i HOME="$home" PATH="$home/.local/bin:/usr/local/bin:/usr/bin:/bin" \
        XDG_RUNTIME_DIR="$work/runtime" LANG=C.UTF-8 OLLAMA_HOST=127.0.0.1:9 \
        OLLAMA_MODELS="$work/ollama-models" "$@"
}

tar -xzf "$tarball" -C "$work/unpacked"
top="$(find "$work/unpacked" -mindepth 1 -maxdepth 1 -type d)"
[ "$(basename "$top")" = "$(basename "$tarball" .tar.gz)" ] || fail "the tarball's folder is $(basename "$top")"
[ ! -e "$top/share/omnipanel/packaged-by" ] || fail "the tarball carries the .deb's packaged-by marker"
as_user "$top/install.sh" --start-at-login >"$work/install.log" 2>&1 \
    || fail "install.sh failed: $(cat "$work/install.log")"

bin="$home/.local/bin"
share="$home/.local/share"
config="$home/.config"
problems=()
expect() { [ -f "$1" ] || problems+=("missing ${1#"$home"/}"); }
for program in omnipanel-agent omnipanel omnipanel-tray omnipanel-panel; do
    [ -x "$bin/$program" ] || problems+=("$program is not installed executable in ~/.local/bin")
done
# Two files; the second names are links to them.
[ "$(readlink "$bin/omnipanel" || true)" = omnipanel-agent ] \
    || problems+=("~/.local/bin/omnipanel is not a link to omnipanel-agent")
[ "$(readlink "$bin/omnipanel-panel" || true)" = omnipanel-tray ] \
    || problems+=("~/.local/bin/omnipanel-panel is not a link to omnipanel-tray")
desktop="$share/applications/omnipanel-tray.desktop"
expect "$desktop"
grep -qxF "Exec=\"$bin/omnipanel-tray\"" "$desktop" 2>/dev/null \
    || problems+=("the desktop entry does not start the installed tray: $(grep '^Exec' "$desktop" 2>/dev/null || true)")
for size in 16 32 48 128 256; do
    expect "$share/icons/hicolor/${size}x${size}/apps/omnipanel-tray.png"
done
expect "$share/man/man1/omnipanel.1.gz"
expect "$share/bash-completion/completions/omnipanel"
expect "$share/doc/omnipanel/LICENSE-MIT"
unit="$config/systemd/user/omnipanel-agent.service"
expect "$unit"
grep -q "^ExecStart=.*$bin/omnipanel-agent" "$unit" 2>/dev/null \
    || problems+=("the user unit does not start the installed agent: $(grep '^ExecStart' "$unit" 2>/dev/null || true)")
expect "$config/autostart/omnipanel.desktop"
expect "$home/.local/lib/omnipanel/uninstall.sh"
expect "$home/.local/lib/omnipanel/installed-files"
[ ${#problems[@]} -eq 0 ] || fail "$(printf '%s; ' "${problems[@]}")"
as_user omnipanel --version | grep -qF "$version" || fail "the installed omnipanel is not $version"
# Each name runs its own program (clap prints the program's name).
for program in omnipanel-agent omnipanel omnipanel-tray omnipanel-panel; do
    as_user "$program" --version | grep -qx "$program $version" \
        || fail "the installed $program does not run as $program: $(as_user "$program" --version 2>&1 | head -n 1)"
done

# The installed agent starts and answers the installed CLI.
as_user "$bin/omnipanel-agent" run --quiet >"$work/agent.log" 2>&1 &
agent_pid=$!
deadline=$((SECONDS + patience))
until as_user omnipanel status >"$work/status.txt" 2>&1; do
    kill -0 "$agent_pid" 2>/dev/null || fail "the installed agent exited: $(cat "$work/agent.log")"
    [ $SECONDS -lt $deadline ] || fail "the installed agent did not answer in ${patience}s: $(cat "$work/status.txt")"
    sleep 0.5
done
grep -qF "$version" "$work/status.txt" || fail "omnipanel status does not name $version: $(cat "$work/status.txt")"
# install.sh's start-at-login entry reads as the agent's own.
as_user omnipanel autostart >"$work/autostart.txt" 2>&1 || fail "omnipanel autostart failed: $(cat "$work/autostart.txt")"
grep -qF "start at login: on ($bin/omnipanel-tray)" "$work/autostart.txt" \
    || fail "the agent does not see install.sh's start-at-login entry: $(cat "$work/autostart.txt")"
as_user omnipanel update status >"$work/update.txt" 2>&1 || fail "omnipanel update status failed: $(cat "$work/update.txt")"
if grep -q "installed from the" "$work/update.txt"; then
    fail "a tarball install is taken for a package install: $(cat "$work/update.txt")"
fi

# Uninstall stops the agent and removes every installed file, keeping data.
as_user "$home/.local/lib/omnipanel/uninstall.sh" >"$work/uninstall.log" 2>&1 \
    || fail "uninstall.sh failed: $(cat "$work/uninstall.log")"
deadline=$((SECONDS + patience))
while kill -0 "$agent_pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "uninstall.sh did not stop the agent"
    sleep 0.5
done
wait "$agent_pid" 2>/dev/null || true
agent_pid=""
[ -f "$share/omnipanel/state.db" ] || fail "uninstall.sh removed the user's data (state.db)"
left="$(cd "$home" && find . -type f \
    ! -path './.local/share/omnipanel/*' ! -path './.config/omnipanel/*' \
    ! -path './.local/state/omnipanel/*' | sort)"
[ -z "$left" ] || fail "uninstall.sh left: $left"
echo "check-tarball: $(head -1 "$work/install.log"); the agent answered as $version; uninstalled, data kept"
