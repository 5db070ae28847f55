#!/usr/bin/env bash
# Resident memory of the tray and the panel, for docs/BENCHMARKS.md: under
# Xvfb (with trayer as the tray host and a private session bus), the agent
# supervising the Ollama double with two models and a Git project of 200
# files open; prints the tray's RSS, then for each run the panel's RSS when
# fresh and after visiting every tab twice (Ctrl+1..9), and their ratio.
#
# usage: tray/memory.sh BIN_DIR DOUBLES_DIR [RUNS]
#   BIN_DIR      omnipanel-agent, omnipanel-tray and omnipanel-panel to
#                measure (e.g. target/release)
#   DOUBLES_DIR  fake-ollama and omnipanel (e.g. target/debug)
# Needs: xvfb trayer xdotool dbus curl git bc.
set -euo pipefail
REL=$1; DBG=$2; RUNS=${3:-3}
TMP=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill $p 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
export HOME="$TMP/home" XDG_RUNTIME_DIR="$TMP/run" XDG_CONFIG_HOME="$TMP/config" XDG_DATA_HOME="$TMP/data" XDG_STATE_HOME="$TMP/state" OMNIPANEL_LOG=info NO_AT_BRIDGE=1
unset OMNIPANEL_SOCKET OMNIPANEL_ADDR
mkdir -p "$HOME/projects/demo/src" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME/omnipanel" "$XDG_STATE_HOME/omnipanel"; chmod 700 "$XDG_RUNTIME_DIR"
touch "$XDG_STATE_HOME/omnipanel/panel-setup-done"
(cd "$HOME/projects/demo" && git init -q && for i in $(seq 1 200); do echo "fn f$i() {}" > src/f$i.rs; done && git add -A && git -c user.name=t -c user.email=t@t commit -qm init && echo x >> src/f1.rs)
rss() { awk '/^VmRSS/ {print $2}' /proc/$1/status; }
dbus-daemon --session --nofork --print-address=3 3>"$TMP/bus" >/dev/null 2>&1 & PIDS+=($!)
until [ -s "$TMP/bus" ]; do sleep 0.2; done; export DBUS_SESSION_BUS_ADDRESS="$(head -1 $TMP/bus)"
d=90; while [ -e /tmp/.X11-unix/X$d ]; do d=$((d+1)); done; export DISPLAY=:$d
Xvfb $DISPLAY -noreset -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 & PIDS+=($!)
until xdotool getdisplaygeometry >/dev/null 2>&1; do sleep 0.2; done
trayer --edge top --align right --widthtype request --height 28 >/dev/null 2>&1 & PIDS+=($!)
port=$((20000 + RANDOM % 20000))
cat >"$XDG_CONFIG_HOME/omnipanel/config.toml" <<EOC
[ollama]
binary = "$DBG/fake-ollama"
host = "127.0.0.1:$port"
registry = "http://127.0.0.1:$port"
models_dir = "$TMP/models"
EOC
"$REL/omnipanel-agent" --quiet >"$TMP/agent.log" 2>&1 & PIDS+=($!)
until [ -S "$XDG_RUNTIME_DIR/omnipanel/agent.sock" ]; do sleep 0.2; done
until curl -sf http://127.0.0.1:$port/api/version >/dev/null; do sleep 0.3; done
for m in llama3.2:1b qwen2.5:0.5b; do curl -sf http://127.0.0.1:$port/api/pull -d "{\"model\":\"$m\",\"stream\":false}" >/dev/null; done
"$DBG/omnipanel" projects open "$HOME/projects/demo" >/dev/null
"$REL/omnipanel-tray" --no-start-agent >"$TMP/tray.log" 2>&1 & TRAY=$!; PIDS+=($TRAY)
until grep -qE "icon: (ok|busy|warning|error)" "$TMP/tray.log"; do sleep 0.3; done
sleep 5; echo "tray_rss_kb $(rss $TRAY)"
for run in $(seq 1 $RUNS); do
  "$REL/omnipanel-panel" --no-start-agent >"$TMP/panel$run.log" 2>&1 & P=$!
  until xdotool search --onlyvisible --name '^OmniPanel' >/dev/null 2>&1; do sleep 0.3; done
  sleep 6; fresh=$(rss $P)
  W=$(xdotool search --onlyvisible --name '^OmniPanel' | head -1)
  for k in 1 2 3 4 5 6 7 8 9 1 2 3 4 5 6 7 8 9; do xdotool windowfocus --sync $W key ctrl+$k; sleep 1.5; done
  sleep 4; all=$(rss $P)
  echo "run $run panel_fresh_kb $fresh panel_all_tabs_kb $all ratio $(echo "scale=3; $all/$fresh" | bc)"
  kill $P; wait $P 2>/dev/null || true
done
echo "tray_rss_kb_end $(rss $TRAY)"
