#!/usr/bin/env bash
# GUI smoke test of the tray and the panel, under Xvfb with trayer as the
# tray host: starts a real agent (supervising the fake Ollama when it is
# built), the tray, has a client ask for access (`omnipanel clients
# request`, left waiting), checks the tray announced it, opens the tray
# menu with xdotool (its "Access requests (1)…" item must be there) and its
# "Open panel", opens the panel a second time (it must focus the first and
# exit), then on the Clients tab (the request's card), closes it with Esc,
# and opens the first-run setup; saves screenshots (tray-menu, panel,
# panel-models, panel-clients, panel-setup .png, and tray-notification.png
# with the desktop notification of the request) and the RSS of tray, panel
# and agent (rss.txt) into ARTIFACT_DIR, and fails if any process died;
# then SIGTERM must end the panel, the tray and the agent with status 0.
#
# usage: tray/smoke.sh [ARTIFACT_DIR]     (default: target/gui-smoke)
# env:   BIN_DIR   folder with omnipanel-agent, omnipanel-tray, omnipanel-panel,
#                  omnipanel and optionally fake-ollama and fake-openai (default: $CARGO_TARGET_DIR/debug
#                  or target/debug)
#
# Build first: cargo build -p omnipanel-agent -p omnipanel-tray -p omnipanel-cli
#              [-p omnipanel-tests --bin fake-ollama --bin fake-openai]
# Needs: xvfb trayer xdotool imagemagick dbus dunst (scripts/lib/setup.sh
# installs them). The tray gets a D-Bus session bus of the test's own, never the
# desktop's.
# Every wait is "until it happens, at most N seconds": no assertion depends
# on how fast the machine is.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/target/gui-smoke}" && cd "${1:-$ROOT/target/gui-smoke}" && pwd)"
BIN="${BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/debug}"

for tool in Xvfb trayer xdotool import dbus-daemon dbus-send dunst; do
    command -v "$tool" >/dev/null || { echo "smoke: $tool is missing (xvfb trayer xdotool imagemagick dbus dunst)" >&2; exit 2; }
done
for exe in omnipanel-agent omnipanel-tray omnipanel-panel omnipanel; do
    [ -x "$BIN/$exe" ] || { echo "smoke: $BIN/$exe is missing; build it first" >&2; exit 2; }
done

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
mkdir -p "$HOME/projects/demo" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME/omnipanel" "$XDG_STATE_HOME/omnipanel"
chmod 700 "$XDG_RUNTIME_DIR"
# The first-run setup is shown by a separate screenshot; start past it.
touch "$XDG_STATE_HOME/omnipanel/panel-setup-done"

# poll SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds (0) or
# SECONDS have passed (1). COMMAND runs in this shell: it may set variables.
poll() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS <= deadline)) || return 1
        sleep 0.2
    done
}
# wait_for SECONDS DESCRIPTION COMMAND...: poll, and say what never came.
wait_for() {
    local limit=$1 what=$2
    shift 2
    poll "$limit" "$@" || { echo "smoke: timed out waiting for $what" >&2; return 1; }
}
alive() { kill -0 "$1" 2>/dev/null; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# A session bus of the test's own: libayatana and dbusmenu in the tray want
# one (without, they try to start one with dbus-launch and log that they
# cannot), and the desktop's bus must see neither the test's tray icon nor
# its notifications. With no StatusNotifierWatcher on it, the icon falls
# back to XEmbed and docks in trayer. No accessibility bridge: GTK would
# start the accessibility bus through it, and that outlives the test.
dbus-daemon --session --nofork --print-address=3 3>"$TMP/bus" >"$OUT/dbus.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the session bus" test -s "$TMP/bus"
DBUS_SESSION_BUS_ADDRESS="$(head -1 "$TMP/bus")"
export DBUS_SESSION_BUS_ADDRESS NO_AT_BRIDGE=1

# The display. -noreset: by default the server resets when its last client
# leaves and drops connections still being set up: trayer, connecting just
# as the readiness probe below disconnected, sometimes found no display.
display=99
while [ -e "/tmp/.X11-unix/X$display" ]; do display=$((display + 1)); done
export DISPLAY=":$display"
Xvfb "$DISPLAY" -noreset -screen 0 1280x800x24 -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
PIDS+=($!)
wait_for 30 "Xvfb" xdotool getdisplaygeometry

# A notification server on the test's bus, so the tray's notifications
# can be seen in the screenshots (below the tray, top right).
cat >"$TMP/dunstrc" <<'EOF'
[global]
origin = top-right
offset = 10x40
width = 420
font = Sans 10
[urgency_normal]
timeout = 60
EOF
dunst -config "$TMP/dunstrc" >"$OUT/dunst.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the notification server" dbus-send --session --print-reply \
    --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.GetNameOwner \
    string:org.freedesktop.Notifications

# A tray host (XEmbed).
trayer --edge top --align right --widthtype request --height 28 --SetDockType true \
    --transparent false --tint 0x303030 >"$OUT/trayer.log" 2>&1 &
PIDS+=($!)
TRAYER=$!
wait_for 30 "trayer" xdotool search --classname trayer

# The agent, with the fake Ollama when it is built.
if [ -x "$BIN/fake-ollama" ]; then
    port=$((20000 + RANDOM % 20000))
    cat >"$XDG_CONFIG_HOME/omnipanel/config.toml" <<EOF
[ollama]
binary = "$BIN/fake-ollama"
host = "127.0.0.1:$port"
registry = "http://127.0.0.1:$port"
models_dir = "$TMP/ollama-models"
EOF
fi
"$BIN/omnipanel-agent" --quiet >"$OUT/agent.log" 2>&1 &
PIDS+=($!)
AGENT=$!
wait_for 60 "the agent's socket" test -S "$XDG_RUNTIME_DIR/omnipanel/agent.sock"
if [ -x "$BIN/fake-ollama" ] && command -v curl >/dev/null; then
    # Give the fake two models, as if pulled earlier.
    wait_for 60 "fake Ollama" curl -sf "http://127.0.0.1:$port/api/version"
    for model in llama3.2:1b qwen2.5:0.5b; do
        curl -sf "http://127.0.0.1:$port/api/pull" -d "{\"model\":\"$model\",\"stream\":false}" >/dev/null \
            || { echo "smoke: the fake Ollama could not pull $model" >&2; exit 1; }
    done
fi
# An OpenAI-compatible provider (fake-openai, when built) with an API key
# given on stdin, for the Models tab's Providers table and the tray's
# Providers submenu.
if [ -x "$BIN/fake-openai" ]; then
    oport=$((20000 + RANDOM % 20000))
    FAKE_OPENAI_ADDR="127.0.0.1:$oport" FAKE_OPENAI_API_KEY=smoke-key "$BIN/fake-openai" serve \
        >"$OUT/fake-openai.log" 2>&1 &
    PIDS+=($!)
    wait_for 30 "fake-openai" grep -q "Listening on" "$OUT/fake-openai.log"
    echo smoke-key | "$BIN/omnipanel" providers add lmstudio "http://127.0.0.1:$oport/v1" \
        --kind openai --api-key-stdin --header X-Team=smoke >"$OUT/providers-add.log" 2>&1 \
        || { echo "smoke: adding the fake-openai provider failed: $(cat "$OUT/providers-add.log")" >&2; exit 1; }
fi

# The tray.
"$BIN/omnipanel-tray" --no-start-agent >"$OUT/tray.log" 2>&1 &
PIDS+=($!)
TRAY=$!
wait_for 60 "the tray icon" grep -q "tray icon shown" "$OUT/tray.log"
# The tray logs each change of icon; any but "disconnected" means connected
# (and its menu is the connected one, "Open panel" its first item). This
# can fail: the tray starts with the disconnected icon and logs only
# changes, so none of these names appears until it has connected (the
# views tests pin that a state without a connection is "disconnected").
wait_for 60 "the tray to connect" grep -qE "icon: (ok|busy|warning|error)" "$OUT/tray.log"

# A client asks for access and waits for the answer (the request lives 2
# minutes; the screenshots below come well within that). The tray logs the
# text of the desktop notification it shows.
"$BIN/omnipanel" clients request --name "Smoke Test" --scopes read,write \
    --reason "GUI smoke test" >"$OUT/clients-request.log" 2>&1 &
PIDS+=($!)
REQUEST=$!
wait_for 60 "the tray to announce the access request" \
    grep -q "Smoke Test (self-declared) asks for read, write on every project" "$OUT/tray.log"
sleep 1 # let the notification server draw it
import -window root "$OUT/tray-notification.png"

# Open the tray menu: click the icon docked in trayer (its window class is
# tray-icon's) once it is clickable: its window mapped, and trayer done
# placing it (the same geometry on two reads in a row).
ICON=""
icon_placed() {
    local window geometry
    window="$(xdotool search --onlyvisible --classname 'tray-icon tray app' | tail -1)"
    [ -n "$window" ] || return 1
    geometry="$(xdotool getwindowgeometry --shell "$window")" || return 1
    [ "$geometry" = "$ICON" ] && return 0
    ICON="$geometry"
    return 1
}
wait_for 30 "the icon to dock" icon_placed
eval "$ICON" # WINDOW X Y WIDTH HEIGHT SCREEN
visible_tray_windows() { { xdotool search --onlyvisible --class omnipanel-tray 2>/dev/null || true; } | wc -l; }
menus_before="$(visible_tray_windows)"
menu_shown() { [ "$(visible_tray_windows)" -gt "$menus_before" ]; }
# A click the icon does not turn into a menu is gone, not queued: click
# until the menu maps. The menu maps within milliseconds of a click that
# works, so each try waits a few seconds before the next (a click on an
# open menu would close it).
clicks=0
deadline=$((SECONDS + 30))
until menu_shown; do
    if ((SECONDS > deadline)); then
        echo "smoke: timed out waiting for the tray menu ($clicks clicks)" >&2
        exit 1
    fi
    xdotool mousemove $((X + WIDTH / 2)) $((Y + HEIGHT / 2)) click 1
    clicks=$((clicks + 1))
    poll 3 menu_shown || true
done
echo "tray_menu_clicks $clicks"
sleep 0.5 # let GTK paint it
import -window root "$OUT/tray-menu.png"
# The menu offers the waiting request (its text, as xdotool cannot read
# GTK menu items, from the tray's own record of the menu it built).
wait_for 10 "the menu's access request item" grep -q "menu: Access requests (1)…" "$OUT/tray.log"

# "Open panel" is the menu's first clickable item: the keyboard selects it.
xdotool key Down Return
wait_for 60 "the panel window" xdotool search --onlyvisible --name '^OmniPanel'
PANEL="$(pgrep -f "$BIN/omnipanel-panel" | head -1)"
[ -n "$PANEL" ] || { echo "smoke: the tray did not start the panel" >&2; exit 1; }
PIDS+=("$PANEL")
sleep 3 # a few metric samples for the plots (what the screenshot shows, not a check)
import -window root "$OUT/panel.png"
{
    echo "tray_rss_kb $(rss_kb "$TRAY")"
    echo "panel_rss_kb $(rss_kb "$PANEL")"
    echo "agent_rss_kb $(rss_kb "$AGENT")"
} >"$OUT/rss.txt"
cat "$OUT/rss.txt"

# A second "open" must bring the panel forward (on another tab) and exit.
timeout 60 "$BIN/omnipanel-panel" --tab models >"$OUT/panel-second.log" 2>&1 \
    || { echo "smoke: the second panel did not exit cleanly" >&2; exit 1; }
sleep 1
import -window root "$OUT/panel-models.png"

# The Clients tab, with the waiting request's card (what the menu's
# "Access requests (1)…" opens).
timeout 60 "$BIN/omnipanel-panel" --tab clients >"$OUT/panel-clients.log" 2>&1 \
    || { echo "smoke: the panel did not switch to the Clients tab" >&2; exit 1; }
sleep 1
import -window root "$OUT/panel-clients.png"
alive "$REQUEST" || { echo "smoke: the access request ended before it was answered" >&2; cat "$OUT/clients-request.log" >&2; exit 1; }

# Esc closes the panel, and closing ends its process.
xdotool windowfocus --sync "$(xdotool search --onlyvisible --name '^OmniPanel' | head -1)" key Escape
panel_gone() { ! alive "$PANEL"; }
wait_for 30 "the panel to exit on Esc" panel_gone

# The first-run setup, as a new user sees it.
"$BIN/omnipanel-panel" --setup >"$OUT/panel.log" 2>&1 &
PIDS+=($!)
PANEL=$!
wait_for 60 "the setup panel" xdotool search --onlyvisible --name '^OmniPanel'
sleep 2
import -window root "$OUT/panel-setup.png"

# Everyone still alive?
status=0
for pair in "agent:$AGENT" "tray:$TRAY" "panel:$PANEL" "trayer:$TRAYER"; do
    if ! alive "${pair#*:}"; then
        echo "smoke: the ${pair%%:*} died" >&2
        status=1
    fi
done
if [ "$(pgrep -c -f "$BIN/omnipanel-panel" || true)" != "1" ]; then
    echo "smoke: expected exactly one panel process" >&2
    status=1
fi
[ $status -eq 0 ] || exit $status

# SIGTERM (the session ending, `kill`) ends the panel, the tray and the
# agent through their normal path: each exits 0 (not 143, death by the
# signal), as the panel's saved window state and an instrumented build's
# coverage profile need.
exited() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
for pair in "panel:$PANEL" "tray:$TRAY" "agent:$AGENT"; do
    name="${pair%%:*}" pid="${pair#*:}"
    kill -TERM "$pid"
    wait_for 60 "the $name to exit on SIGTERM" exited "$pid"
    code=0
    wait "$pid" || code=$?
    if [ "$code" -ne 0 ]; then
        echo "smoke: the $name exited with $code on SIGTERM, not 0" >&2
        status=1
    fi
done
[ $status -eq 0 ] && echo "smoke: ok; screenshots in $OUT"
exit $status
