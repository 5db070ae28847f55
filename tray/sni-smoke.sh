#!/usr/bin/env bash
# The tray on the StatusNotifierItem path (KDE, GNOME with the AppIndicator
# extension, Xfce), checked at the D-Bus level: under Xvfb (no XEmbed tray)
# with a session bus of the test's own and a test StatusNotifierWatcher on
# it (tests/python/sni_watcher.py), starts a real agent and the tray, and
# checks that the tray's item registers with the watcher, that its
# org.kde.StatusNotifierItem properties read (Title, Status, an icon, the
# Menu path), that its dbusmenu GetLayout holds the items the XEmbed menu
# has ("Open panel" first among them), and that an Event "clicked" on
# "Open panel" opens the panel (its window appears). tray/smoke.sh covers
# the XEmbed path. Saves the watcher's report (sni.json), the logs and a
# screenshot of the opened panel (sni-panel.png) into ARTIFACT_DIR.
#
# usage: tray/sni-smoke.sh [ARTIFACT_DIR]     (default: target/gui-smoke/sni)
# env:   BIN_DIR  folder with omnipanel-agent, omnipanel-tray, omnipanel-panel
#                 (default: $CARGO_TARGET_DIR/debug or target/debug)
#        PYTHON   a python with tests/python/requirements.txt installed
#                 (scripts/test passes need_python_venv's; default python3)
# Every wait is "until it happens, at most N seconds".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/target/gui-smoke/sni}" && cd "${1:-$ROOT/target/gui-smoke/sni}" && pwd)"
BIN="${BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/debug}"
PYTHON="${PYTHON:-python3}"

for tool in Xvfb xdotool import dbus-daemon; do
    command -v "$tool" >/dev/null || { echo "sni-smoke: $tool is missing (xvfb xdotool imagemagick dbus)" >&2; exit 2; }
done
for exe in omnipanel-agent omnipanel-tray omnipanel-panel; do
    [ -x "$BIN/$exe" ] || { echo "sni-smoke: $BIN/$exe is missing; build it first" >&2; exit 2; }
done
"$PYTHON" -c 'import dbus_fast' 2>/dev/null \
    || { echo "sni-smoke: $PYTHON lacks dbus-fast (tests/python/requirements.txt)" >&2; exit 2; }

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

export HOME="$TMP/home" XDG_RUNTIME_DIR="$TMP/run" XDG_CONFIG_HOME="$TMP/config" \
    XDG_DATA_HOME="$TMP/data" XDG_STATE_HOME="$TMP/state" OMNIPANEL_LOG=info
unset OMNIPANEL_SOCKET OMNIPANEL_ADDR
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" "$XDG_STATE_HOME/omnipanel"
chmod 700 "$XDG_RUNTIME_DIR"
touch "$XDG_STATE_HOME/omnipanel/panel-setup-done"
rm -f "$OUT/sni.json"

poll() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS <= deadline)) || return 1
        sleep 0.2
    done
}
wait_for() {
    local limit=$1 what=$2
    shift 2
    poll "$limit" "$@" || { echo "sni-smoke: timed out waiting for $what" >&2; return 1; }
}
fail() {
    echo "sni-smoke: $*" >&2
    for log in watcher tray agent; do
        echo "--- $log.log (last lines)" >&2
        tail -20 "$OUT/$log.log" >&2 || true
    done
    exit 1
}

# The test's own session bus (never the desktop's), no accessibility bus.
dbus-daemon --session --nofork --print-address=3 3>"$TMP/bus" >"$OUT/dbus.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the session bus" test -s "$TMP/bus"
DBUS_SESSION_BUS_ADDRESS="$(head -1 "$TMP/bus")"
export DBUS_SESSION_BUS_ADDRESS NO_AT_BRIDGE=1

# The watcher first: the tray looks for one when it starts.
"$PYTHON" -u "$ROOT/tests/python/sni_watcher.py" "$OUT/sni.json" >"$OUT/watcher.log" 2>&1 &
PIDS+=($!)
WATCHER=$!
wait_for 30 "the StatusNotifierWatcher" grep -q "sni_watcher: ready" "$OUT/watcher.log"

# A display with no XEmbed tray on it: the SNI path is the only one.
display=99
while [ -e "/tmp/.X11-unix/X$display" ]; do display=$((display + 1)); done
export DISPLAY=":$display"
Xvfb "$DISPLAY" -noreset -screen 0 1280x800x24 -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
PIDS+=($!)
wait_for 30 "Xvfb" xdotool getdisplaygeometry

"$BIN/omnipanel-agent" --quiet >"$OUT/agent.log" 2>&1 &
PIDS+=($!)
AGENT=$!
wait_for 60 "the agent's socket" test -S "$XDG_RUNTIME_DIR/omnipanel/agent.sock"

"$BIN/omnipanel-tray" --no-start-agent >"$OUT/tray.log" 2>&1 &
PIDS+=($!)
TRAY=$!
wait_for 60 "the tray icon" grep -q "tray icon shown" "$OUT/tray.log" || fail "no tray icon"
grep -q "tray icon shown (StatusNotifier host)" "$OUT/tray.log" \
    || fail "the tray did not take the StatusNotifier path: $(grep 'tray icon shown' "$OUT/tray.log")"
# Connected: the menu is the connected one, with "Open panel".
wait_for 60 "the tray to connect" grep -qE "icon: (ok|busy|warning|error)" "$OUT/tray.log" \
    || fail "the tray did not connect"

# The watcher checks the item when it registers, then clicks "Open panel".
wait_for 60 "the item to register and the watcher's report" test -s "$OUT/sni.json" \
    || fail "no StatusNotifierItem registered with the watcher"
cat "$OUT/sni.json"; echo
"$PYTHON" - "$OUT/sni.json" <<'EOF' || fail "the item's D-Bus interface is not what a host needs"
import json, sys
report = json.load(open(sys.argv[1]))
if "error" in report:
    sys.exit(f"the watcher's check failed: {report['error']}")
props = report["properties"]
problems = []
if props.get("Title") != "OmniPanel":
    problems.append(f"Title is {props.get('Title')!r}, not 'OmniPanel'")
if props.get("Status") not in ("Active", "Passive", "NeedsAttention"):
    problems.append(f"Status is {props.get('Status')!r}")
if not props.get("IconName") and not props.get("IconPixmap"):
    problems.append("neither IconName nor IconPixmap is set")
if not str(props.get("Menu", "")).startswith("/"):
    problems.append(f"Menu is {props.get('Menu')!r}, not an object path")
menu = [label for label in report["menu"] if label]
# The connected menu's items, as in the XEmbed menu (tray/src/tray/menu.rs).
for wanted in ("Open panel", "Quit tray"):
    if wanted not in menu:
        problems.append(f"the menu lacks {wanted!r}: {menu}")
if problems:
    sys.exit("\n".join(problems))
print(f"sni-smoke: item {report['item']}: {props.get('Title')} {props.get('Status')}, menu {menu}")
EOF

# The click opened the panel.
wait_for 60 "the panel window after the dbusmenu click" xdotool search --onlyvisible --name '^OmniPanel' \
    || fail "Event(\"clicked\") on \"Open panel\" did not open the panel"
sleep 1
import -window root "$OUT/sni-panel.png"

status=0
for pair in "agent:$AGENT" "tray:$TRAY" "watcher:$WATCHER"; do
    kill -0 "${pair#*:}" 2>/dev/null || { echo "sni-smoke: the ${pair%%:*} died" >&2; status=1; }
done
PANEL="$(pgrep -f "$BIN/omnipanel-panel" | head -1 || true)"
[ -n "$PANEL" ] && PIDS+=("$PANEL")
[ $status -eq 0 ] && echo "sni-smoke: ok; report and screenshot in $OUT"
exit $status
