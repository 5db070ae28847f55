#!/usr/bin/env bash
# Inspects the .deb that scripts/package built: control fields (package
# name, version, the hand-listed depends) and contents (the two
# executables and the links naming their second programs,
# desktop entry, icons in every size, systemd user unit, completions, man
# pages, docs, the packaged-by marker that leaves updates to apt). Exits
# non-zero naming everything that is missing.
#
#   tests/package/check-deb.sh target/packages/omnipanel_X.Y.Z_amd64.deb VERSION
set -euo pipefail
deb="${1:?usage: check-deb.sh DEB VERSION}"
version="${2:?usage: check-deb.sh DEB VERSION}"
problems=()

field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = omnipanel ] || problems+=("Package is '$(field Package)', not omnipanel")
[ "$(field Version)" = "$version" ] || problems+=("Version is '$(field Version)', not $version")
depends="$(field Depends)"
for dep in libgtk-3-0 libayatana-appindicator3-1 libegl1 libgl1; do
    [[ "$depends" == *"$dep"* ]] || problems+=("Depends lacks $dep: $depends")
done
contents="$(dpkg-deb --contents "$deb" | awk '{print $6}' | sed -e 's|^\./||' -e 's|^|/|')"
expect() {
    grep -qxF "$1" <<<"$contents" || problems+=("missing $1")
}
for bin in omnipanel-agent omnipanel omnipanel-tray omnipanel-panel; do
    expect "/usr/bin/$bin"
done
# cargo-packager names the entry and the icons after the main binary.
expect /usr/share/applications/omnipanel-tray.desktop
for size in 16 32 48 128 256; do
    grep -q "^/usr/share/icons/hicolor/${size}x${size}/apps/omnipanel" <<<"$contents" \
        || problems+=("missing the ${size}x${size} icon")
done
expect /usr/lib/systemd/user/omnipanel-agent.service
expect /usr/share/bash-completion/completions/omnipanel
expect /usr/share/zsh/vendor-completions/_omnipanel
expect /usr/share/fish/vendor_completions.d/omnipanel.fish
expect /usr/share/man/man1/omnipanel.1.gz
expect /usr/share/man/man1/omnipanel-git.1.gz
expect /usr/share/doc/omnipanel/user-guide.md
expect /usr/share/omnipanel/packaged-by

# The unit and the desktop entry point at the installed binaries.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dpkg-deb --extract "$deb" "$work"
grep -q '^ExecStart=/usr/bin/omnipanel-agent' "$work/usr/lib/systemd/user/omnipanel-agent.service" \
    || problems+=("the systemd unit does not start /usr/bin/omnipanel-agent")
# The libc6 floor must cover what the packaged binaries need.
floor="$(sed -nE 's/.*libc6 \(>= ([0-9.]+)\).*/\1/p' <<<"$depends")"
needed="$("$(dirname "$0")/../../scripts/lib/glibc-floor" "$work"/usr/bin/omnipanel-agent \
    "$work"/usr/bin/omnipanel-tray)"
# Two executables; the second names are links to them (scripts/package).
for pair in omnipanel:omnipanel-agent omnipanel-panel:omnipanel-tray; do
    name="${pair%%:*}"
    [ -f "$work/usr/bin/${pair#*:}" ] && [ ! -L "$work/usr/bin/${pair#*:}" ] \
        || problems+=("/usr/bin/${pair#*:} is not a file")
    [ "$(readlink "$work/usr/bin/$name" || true)" = "${pair#*:}" ] \
        || problems+=("/usr/bin/$name is not a link to ${pair#*:}")
done
if [ -z "$floor" ]; then
    problems+=("Depends has no libc6 version: $depends")
elif [ "$(printf '%s\n%s\n' "$floor" "$needed" | sort -V | tail -n 1)" != "$floor" ]; then
    problems+=("Depends says libc6 (>= $floor) but the binaries need glibc $needed")
fi
# The marker that makes the agent leave updates to apt.
grep -qx 'update=sudo apt update && sudo apt upgrade omnipanel' "$work/usr/share/omnipanel/packaged-by" 2>/dev/null \
    || problems+=("/usr/share/omnipanel/packaged-by does not name the apt command")
desktop="$work/usr/share/applications/omnipanel-tray.desktop"
if [ -f "$desktop" ]; then
    grep -q '^Exec=omnipanel-tray' "$desktop" \
        || problems+=("the desktop entry does not start omnipanel-tray: $(grep '^Exec' "$desktop" || true)")
    grep -q '^Icon=omnipanel-tray' "$desktop" || problems+=("the desktop entry's icon is not omnipanel-tray")
fi

if [ ${#problems[@]} -gt 0 ]; then
    printf 'check-deb: %s\n' "${problems[@]}" >&2
    exit 1
fi
echo "check-deb: $(basename "$deb") is complete ($(wc -l <<<"$contents") entries; depends: $depends)"
