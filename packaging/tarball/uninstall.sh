#!/usr/bin/env bash
# Removes a per-user OmniPanel install made by the tarball's install.sh:
# stops the agent these programs run (the systemd user service if enabled,
# else `omnipanel agent stop`), then deletes exactly the files listed in
# installed-files beside this script, the start-at-login entry when it
# starts these programs, and OmniPanel's own folders once empty. Settings,
# projects, chats and logs ($XDG_CONFIG_HOME/omnipanel,
# $XDG_DATA_HOME/omnipanel, $XDG_STATE_HOME/omnipanel) are kept; delete
# them by hand to forget everything.
#
#   PREFIX/lib/omnipanel/uninstall.sh [--keep-running] [--quiet]
#
# install.sh runs it with --keep-running before installing again.
set -euo pipefail

lib="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="$(dirname "$(dirname "$lib")")"
bin="$prefix/bin"
list="$lib/installed-files"
keep_running=false
quiet=false
for arg in "$@"; do
    case "$arg" in
        --keep-running) keep_running=true ;;
        --quiet) quiet=true ;;
        *) printf 'uninstall.sh: unknown argument %s (usage: uninstall.sh [--keep-running] [--quiet])\n' "$arg" >&2; exit 1 ;;
    esac
done
[ -f "$list" ] || { printf 'uninstall.sh: %s is missing; nothing to remove\n' "$list" >&2; exit 1; }
config_home="${XDG_CONFIG_HOME:-}"
[[ "$config_home" == /* ]] || config_home="$HOME/.config"

if ! $keep_running; then
    unit="$config_home/systemd/user/omnipanel-agent.service"
    if [ -f "$unit" ] && command -v systemctl >/dev/null \
        && systemctl --user show-environment >/dev/null 2>&1; then
        systemctl --user disable --now omnipanel-agent >/dev/null 2>&1 || true
    fi
    # An agent started by the tray or by hand: ask it to stop (it answers
    # even when Ollama is down; none running is fine).
    if [ -x "$bin/omnipanel" ]; then
        "$bin/omnipanel" agent stop >/dev/null 2>&1 || true
    fi
    # The start-at-login entry, when it starts these programs (not another
    # install's).
    autostart="$config_home/autostart/omnipanel.desktop"
    if [ -f "$autostart" ] && grep -qF "$bin/omnipanel-" "$autostart"; then
        rm -f "$autostart"
    fi
fi

removed=0
folders=()
while IFS= read -r path; do
    [ -n "$path" ] || continue
    if [ -e "$path" ] || [ -L "$path" ]; then
        rm -f "$path"
        removed=$((removed + 1))
    fi
    folders+=("$(dirname "$path")")
done <"$list"
# OmniPanel's own folders (lib/omnipanel, doc/omnipanel) go when empty;
# shared ones (bin, applications, icons…) stay even if we emptied them.
printf '%s\n' "${folders[@]}" | sort -ru | while IFS= read -r dir; do
    case "$(basename "$dir")" in
        omnipanel) rmdir "$dir" 2>/dev/null || true ;;
    esac
done
if command -v systemctl >/dev/null && systemctl --user show-environment >/dev/null 2>&1; then
    systemctl --user daemon-reload >/dev/null 2>&1 || true
fi
$quiet || echo "removed OmniPanel from $prefix ($removed files); your settings and data are kept"
