#!/usr/bin/env bash
# Screenshot test of the panel: every main tab in light and dark, each
# compared with its committed reference (tests/gui/reference/<tab>-<theme>.png)
# under Xvfb. The screens are made deterministic first: the agent reports a
# fixed made-up machine (OMNIPANEL_TEST_METRICS=1), the Ollama double holds
# two models on a fixed port, the paths shown are fixed, the window has a
# fixed size, the fonts are egui's embedded ones, and what must stay live
# (the plots' traces, which grow with the time the panel has been open; log
# and activity lines with their times) is masked on both images before
# comparing. Per tab it also checks the window title and that the tab shows
# no error: the panel writes, under OMNIPANEL_TEST_REPORT, a line per change
# of the tab shown and the errors on it, and the test waits for that line
# before each shot. Last, a panel opened with no tab must come back on the
# tab the previous one was closed on (its window state, kept by the agent).
#
# usage: tray/screens.sh [ARTIFACT_DIR]     (default: target/gui-screens)
# env:   BIN_DIR         folder with omnipanel-agent, omnipanel-panel,
#                        omnipanel and fake-ollama (default: target/debug)
#        OMNIPANEL_BLESS=1  rewrite the references (and docs/screenshots/)
#                        from this run instead of comparing: on purpose
#                        only, after looking at the new screens
#        SCREENS_FUZZ    colour distance still counted as equal (default 10%)
#        SCREENS_LIMIT   differing pixels allowed per screen (default 10: one
#                        "!" added to a heading is 20)
# Artifacts: <tab>-<theme>.png (the shots), <tab>-<theme>-diff.png (only
# for screens that differ), report-<theme>.txt, the logs.
# Needs: xvfb xdotool imagemagick (scripts/lib/setup.sh installs them).
# Every wait is "until it happens, at most N seconds".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/target/gui-screens}" && cd "${1:-$ROOT/target/gui-screens}" && pwd)"
BIN="${BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/debug}"
REF="$ROOT/tests/gui/reference"
DOCS="$ROOT/docs/screenshots"
FUZZ="${SCREENS_FUZZ:-10%}"
LIMIT="${SCREENS_LIMIT:-10}"
TABS=(overview chat projects git models alerts logs clients audit)
THEMES=(light dark)

for tool in Xvfb xdotool import compare convert curl; do
    command -v "$tool" >/dev/null || { echo "screens: $tool is missing (xvfb xdotool imagemagick curl)" >&2; exit 2; }
done
for exe in omnipanel-agent omnipanel-panel omnipanel fake-ollama; do
    [ -x "$BIN/$exe" ] || { echo "screens: $BIN/$exe is missing; build it first" >&2; exit 2; }
done

# A fixed folder: the Projects tab shows the project's path.
TMP=/tmp/omnipanel-screens
rm -rf "$TMP"
mkdir -p "$TMP"
PIDS=()
cleanup() {
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

export HOME="$TMP/home" XDG_RUNTIME_DIR="$TMP/run" XDG_CONFIG_HOME="$TMP/config" \
    XDG_DATA_HOME="$TMP/data" XDG_STATE_HOME="$TMP/state" OMNIPANEL_LOG=info
unset OMNIPANEL_SOCKET OMNIPANEL_ADDR DBUS_SESSION_BUS_ADDRESS
mkdir -p "$HOME/projects/demo" "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME/omnipanel" "$XDG_STATE_HOME/omnipanel"
chmod 700 "$XDG_RUNTIME_DIR"
touch "$XDG_STATE_HOME/omnipanel/panel-setup-done"

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
    poll "$limit" "$@" || { echo "screens: timed out waiting for $what" >&2; return 1; }
}
alive() { kill -0 "$1" 2>/dev/null; }

display=99
while [ -e "/tmp/.X11-unix/X$display" ]; do display=$((display + 1)); done
export DISPLAY=":$display"
Xvfb "$DISPLAY" -noreset -screen 0 1280x800x24 -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
PIDS+=($!)
wait_for 30 "Xvfb" xdotool getdisplaygeometry

# The agent with the Ollama double on a fixed port (the Models tab shows
# its URL) and the fixed machine.
port=47311
cat >"$XDG_CONFIG_HOME/omnipanel/config.toml" <<EOF
[ollama]
binary = "$BIN/fake-ollama"
host = "127.0.0.1:$port"
registry = "http://127.0.0.1:$port"
models_dir = "$TMP/ollama-models"
EOF
OMNIPANEL_TEST_METRICS=1 "$BIN/omnipanel-agent" --quiet >"$OUT/agent.log" 2>&1 &
PIDS+=($!)
AGENT=$!
wait_for 60 "the agent's socket" test -S "$XDG_RUNTIME_DIR/omnipanel/agent.sock"
wait_for 60 "fake Ollama" curl -sf "http://127.0.0.1:$port/api/version"
for model in llama3.2:1b qwen2.5:0.5b; do
    curl -sf "http://127.0.0.1:$port/api/pull" -d "{\"model\":\"$model\",\"stream\":false}" >/dev/null \
        || { echo "screens: the fake Ollama could not pull $model" >&2; exit 1; }
done
"$BIN/omnipanel" models default llama3.2:1b >"$OUT/cli.log" 2>&1 \
    || { echo "screens: setting the default model failed: $(cat "$OUT/cli.log")" >&2; exit 1; }
# The demo project: a small Git repository with a commit, a staged file, a
# change and a new file, so the Projects and Git tabs show what a user
# sees (fixed author and dates: the screens must not change between runs).
(
    cd "$HOME/projects/demo"
    mkdir -p src docs
    printf 'fn main() {\n    println!("hello");\n}\n' >src/main.rs
    printf 'pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n' >src/lib.rs
    printf '# demo\n\nA small project.\n' >README.md
    printf 'target/\n' >.gitignore
    export GIT_AUTHOR_NAME=Demo GIT_AUTHOR_EMAIL=demo@example.com GIT_COMMITTER_NAME=Demo \
        GIT_COMMITTER_EMAIL=demo@example.com GIT_AUTHOR_DATE=2026-01-01T12:00:00Z \
        GIT_COMMITTER_DATE=2026-01-01T12:00:00Z
    git init -q -b main . && git add -A && git commit -qm "First commit"
    printf 'fn main() {\n    println!("hello, world");\n}\n' >src/main.rs
    printf '# Notes\n' >docs/notes.md && git add docs/notes.md
    printf 'scratch\n' >todo.txt
) >>"$OUT/cli.log" 2>&1 || { echo "screens: making the demo repository failed" >&2; exit 1; }
"$BIN/omnipanel" projects open "$HOME/projects/demo" >>"$OUT/cli.log" 2>&1 \
    || { echo "screens: opening the demo project failed: $(cat "$OUT/cli.log")" >&2; exit 1; }

# Regions drawn over both images before comparing, per tab, in window
# pixels (x0,y0 x1,y1): what must stay live.
masks() {
    case "$1" in
        # The traces (they grow leftwards with the time the panel is open).
        overview) echo "rectangle 88,172 751,282 rectangle 88,347 751,457" ;;
        # Log lines and activity entries, with their times.
        logs | audit) echo "rectangle 0,105 760,575" ;;
        *) echo "" ;;
    esac
}
masked() { # IMAGE TAB OUTPUT
    local draw
    draw="$(masks "$2")"
    if [ -n "$draw" ]; then
        convert "$1" -fill '#ff00ff' -draw "$draw" "$3"
    else
        cp "$1" "$3"
    fi
}
title_of() {
    case "$1" in
        overview) echo Overview ;; chat) echo Chat ;; projects) echo Projects ;; git) echo Git ;;
        models) echo Models ;; alerts) echo Alerts ;; logs) echo Logs ;; clients) echo Clients ;;
        audit) echo Audit ;;
    esac
}

status=0
fail() { echo "screens: $*" >&2; status=1; }

for theme in "${THEMES[@]}"; do
    report="$OUT/report-$theme.txt"
    rm -f "$report"
    OMNIPANEL_THEME="$theme" OMNIPANEL_TEST_REPORT="$report" \
        "$BIN/omnipanel-panel" --no-start-agent --tab overview >"$OUT/panel-$theme.log" 2>&1 &
    PANEL=$!
    PIDS+=("$PANEL")
    wait_for 60 "the panel window ($theme)" xdotool search --onlyvisible --name '^OmniPanel'
    WINDOW="$(xdotool search --onlyvisible --name '^OmniPanel' | head -1)"
    # Connected: the title loses its "(not connected)" part.
    title_ok() { [ "$(xdotool getwindowname "$WINDOW")" = "OmniPanel" ]; }
    wait_for 60 "the panel to connect ($theme)" title_ok
    for tab in "${TABS[@]}"; do
        name="$(title_of "$tab")"
        timeout 60 "$BIN/omnipanel-panel" --tab "$tab" >>"$OUT/panel-switch.log" 2>&1 \
            || fail "switching to the $tab tab failed"
        shows_tab() { tail -1 "$report" | grep -q "^$name errors="; }
        wait_for 30 "the $tab tab ($theme)" shows_tab || { status=1; continue; }
        # A few frames for what arrives with the tab (its first reads).
        sleep 1.5
        shot="$OUT/$tab-$theme.png"
        import -window "$WINDOW" "$shot"
        title_ok || fail "$tab ($theme): window title is '$(xdotool getwindowname "$WINDOW")'"
        line="$(grep "^$name errors=" "$report" | tail -1)"
        [ "$line" = "$name errors=0" ] || fail "$tab ($theme) shows an error: $line"
        ref="$REF/$tab-$theme.png"
        if [ "${OMNIPANEL_BLESS:-}" = 1 ]; then
            mkdir -p "$REF" "$DOCS"
            cp "$shot" "$ref"
            cp "$shot" "$DOCS/panel-$tab-$theme.png"
            echo "screens: blessed $ref"
            continue
        fi
        if [ ! -f "$ref" ]; then
            fail "$tab ($theme): no reference $ref (run with OMNIPANEL_BLESS=1 to make it)"
            continue
        fi
        masked "$shot" "$tab" "$TMP/shot.png"
        masked "$ref" "$tab" "$TMP/ref.png"
        # AE: the number of pixels farther apart than the fuzz. compare
        # exits 2 on trouble (sizes differ): that fails too.
        set +e
        differing="$(compare -metric AE -fuzz "$FUZZ" "$TMP/ref.png" "$TMP/shot.png" \
            "$OUT/$tab-$theme-diff.png" 2>&1 >/dev/null)"
        code=$?
        set -e
        differing="${differing%% *}"
        if [ $code -eq 2 ] || ! [[ "$differing" =~ ^[0-9.e+]+$ ]]; then
            fail "$tab ($theme): cannot compare with the reference: $differing"
        elif awk -v d="$differing" -v l="$LIMIT" 'BEGIN { exit !(d > l) }'; then
            fail "$tab ($theme): $differing pixels differ from the reference (limit $LIMIT); see $OUT/$tab-$theme-diff.png"
        else
            echo "screens: $tab ($theme) matches ($differing pixels differ)"
            rm -f "$OUT/$tab-$theme-diff.png"
        fi
    done
    alive "$PANEL" || fail "the panel died ($theme)"
    # Esc closes it (saving its window state on the way out).
    xdotool windowfocus --sync "$WINDOW" key Escape
    panel_gone() { ! alive "$PANEL"; }
    wait_for 30 "the panel to exit on Esc ($theme)" panel_gone || kill "$PANEL" 2>/dev/null || true
    wait "$PANEL" 2>/dev/null || true
done

# The window state: opened with no tab named, the panel comes back on the
# tab it was closed on (the last of TABS), read back from the agent.
report="$OUT/report-restore.txt"
last="$(title_of "${TABS[-1]}")"
OMNIPANEL_THEME=light OMNIPANEL_TEST_REPORT="$report" \
    "$BIN/omnipanel-panel" --no-start-agent >"$OUT/panel-restore.log" 2>&1 &
PANEL=$!
PIDS+=("$PANEL")
restored() { grep -q "^$last errors=" "$report"; }
wait_for 60 "the panel to restore the $last tab" restored || fail "the window state was not restored: $(tr '\n' ';' <"$report" 2>/dev/null)"
kill "$PANEL" 2>/dev/null || true
wait "$PANEL" 2>/dev/null || true
alive "$AGENT" || fail "the agent died"
[ $status -eq 0 ] && echo "screens: ok; shots in $OUT"
exit $status
