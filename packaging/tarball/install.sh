#!/usr/bin/env bash
# Installs OmniPanel for the current user, without root, from the unpacked
# tarball this script sits in (built by scripts/package --formats tarball):
#
#   ./install.sh [--prefix DIR] [--start-at-login]
#
#   PREFIX/bin (default ~/.local/bin)   omnipanel-agent, omnipanel-tray,
#                                       and the links omnipanel (to the
#                                       agent's executable) and
#                                       omnipanel-panel (to the tray's)
#   $XDG_DATA_HOME (~/.local/share)     applications/omnipanel-tray.desktop,
#                                       icons, man pages, shell completions
#   $XDG_CONFIG_HOME (~/.config)        systemd/user/omnipanel-agent.service
#                                       (written by the agent for this
#                                       path; not enabled, as the .deb's);
#                                       with --start-at-login the tray's
#                                       autostart/omnipanel.desktop
#   PREFIX/lib/omnipanel                uninstall.sh and the list of the
#                                       files installed, which it removes
#
# Installing again (e.g. a newer tarball) replaces the files. The agent in
# PREFIX/bin updates itself (`omnipanel update`); your settings and data
# ($XDG_CONFIG_HOME/omnipanel, $XDG_DATA_HOME/omnipanel) are never touched.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
[ -n "${HOME:-}" ] || die "HOME is not set"

prefix="$HOME/.local"
start_at_login=false
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?--prefix needs a folder}"; shift ;;
        --start-at-login) start_at_login=true ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (usage: ./install.sh [--prefix DIR] [--start-at-login])" ;;
    esac
    shift
done
case "$prefix" in /*) ;; *) prefix="$PWD/$prefix" ;; esac
# The XDG rules the agent itself follows: a relative value is ignored.
data_home="${XDG_DATA_HOME:-}"
[[ "$data_home" == /* ]] || data_home="$HOME/.local/share"
config_home="${XDG_CONFIG_HOME:-}"
[[ "$config_home" == /* ]] || config_home="$HOME/.config"

bin="$prefix/bin"
lib="$prefix/lib/omnipanel"
for program in omnipanel-agent omnipanel omnipanel-tray omnipanel-panel; do
    [ -x "$here/bin/$program" ] || die "$here/bin/$program is missing: unpack the whole tarball and run install.sh from it"
done
# An agent that cannot start here (say, a C library older than the one it
# was built for) is reported before anything is replaced.
if ! problem="$("$here/bin/omnipanel-agent" --version 2>&1 >/dev/null)"; then
    die "omnipanel-agent cannot run on this machine: ${problem:-it gave no message}"
fi

# An earlier install's files go first (a newer tarball may ship fewer).
if [ -x "$lib/uninstall.sh" ]; then
    "$lib/uninstall.sh" --keep-running --quiet || true
fi

installed=()
# put SOURCE DEST MODE: copy through a temporary name, so a running agent's
# program is replaced, never written over while it runs.
put() {
    mkdir -p "$(dirname "$2")"
    cp "$1" "$2.new.$$"
    chmod "$3" "$2.new.$$"
    mv -f "$2.new.$$" "$2"
    installed+=("$2")
}
# link TARGET DEST: DEST becomes a link to TARGET (a name in its folder),
# through a temporary name as put does.
link() {
    ln -sfn "$1" "$2.new.$$"
    mv -Tf "$2.new.$$" "$2"
    installed+=("$2")
}
write() { # DEST (text on stdin)
    mkdir -p "$(dirname "$1")"
    cat >"$1.new.$$"
    chmod 644 "$1.new.$$"
    mv -f "$1.new.$$" "$1"
    installed+=("$1")
}

# Two executables, each two programs chosen by the name they run under.
for program in omnipanel-agent omnipanel-tray; do
    put "$here/bin/$program" "$bin/$program" 755
done
link omnipanel-agent "$bin/omnipanel"
link omnipanel-tray "$bin/omnipanel-panel"
for icon in "$here"/share/icons/*.png; do
    size="$(basename "$icon" .png)"
    put "$icon" "$data_home/icons/hicolor/${size}/apps/omnipanel-tray.png" 644
done
for page in "$here"/share/man/man1/*; do
    put "$page" "$data_home/man/man1/$(basename "$page")" 644
done
put "$here/share/completions/omnipanel.bash" "$data_home/bash-completion/completions/omnipanel" 644
put "$here/share/completions/_omnipanel" "$data_home/zsh/site-functions/_omnipanel" 644
put "$here/share/completions/omnipanel.fish" "$data_home/fish/vendor_completions.d/omnipanel.fish" 644
for doc in "$here"/share/doc/*; do
    put "$doc" "$data_home/doc/omnipanel/$(basename "$doc")" 644
done

# Exec= quoted per the Desktop Entry specification (the agent's rule in
# agent/core/src/autostart.rs): in double quotes with " ` $ \ escaped, then
# every \ doubled.
exec_arg() {
    local arg="$1"
    arg="${arg//%/%%}"
    case "$arg" in
        ''|*[[:space:]\"\'\\\>\<~\|\&\;\$\*\?\#\(\)\`]*)
            arg="${arg//\\/\\\\}"
            arg="${arg//\"/\\\"}"
            arg="${arg//\`/\\\`}"
            arg="${arg//\$/\\\$}"
            arg="\"$arg\""
            ;;
    esac
    printf '%s' "${arg//\\/\\\\}"
}
write "$data_home/applications/omnipanel-tray.desktop" <<EOF
[Desktop Entry]
Type=Application
Name=OmniPanel
Comment=Local-AI workspace agent: Ollama supervision, models, projects, Git and system alerts
Exec=$(exec_arg "$bin/omnipanel-tray")
Icon=omnipanel-tray
Categories=Development;
Terminal=false
StartupNotify=false
Keywords=LLM;Ollama;AI;models;git;
EOF

# The agent writes its own unit, for the path it now lives at (through a
# file: `write` must run in this shell to record what it wrote).
unit="$(mktemp)"
trap 'rm -f "$unit"' EXIT
"$bin/omnipanel-agent" service print-unit --exec "$bin/omnipanel-agent" >"$unit" \
    || die "$bin/omnipanel-agent cannot write its systemd unit"
write "$config_home/systemd/user/omnipanel-agent.service" <"$unit"

if $start_at_login; then
    # What the tray's "Start at login" writes (agent/core/src/autostart.rs),
    # so the tray and `omnipanel autostart` see it as on.
    write "$config_home/autostart/omnipanel.desktop" <<EOF
[Desktop Entry]
Type=Application
Version=1.0
Name=OmniPanel
Comment=Local LLM and project assistant (tray)
Exec=$(exec_arg "$bin/omnipanel-tray")
Icon=omnipanel
Terminal=false
StartupNotify=false
X-GNOME-Autostart-enabled=true
EOF
fi

put "$here/uninstall.sh" "$lib/uninstall.sh" 755
printf '%s\n' "${installed[@]}" "$lib/installed-files" >"$unit"
write "$lib/installed-files" <"$unit"

# Let the desktop and systemd see the new files, where they run.
if command -v systemctl >/dev/null && systemctl --user show-environment >/dev/null 2>&1; then
    systemctl --user daemon-reload || true
fi
command -v update-desktop-database >/dev/null && update-desktop-database -q "$data_home/applications" 2>/dev/null || true

version="$("$bin/omnipanel" --version 2>/dev/null || echo OmniPanel)"
echo "installed $version in $bin (${#installed[@]} files; uninstall: $lib/uninstall.sh)"
case ":$PATH:" in
    *":$bin:"*) ;;
    *) echo "note: $bin is not on your PATH; add it (e.g. in ~/.profile) to run omnipanel by name" ;;
esac
echo "start it from your application menu (OmniPanel), or run: omnipanel-tray"
echo "as a systemd user service instead: systemctl --user enable --now omnipanel-agent"
