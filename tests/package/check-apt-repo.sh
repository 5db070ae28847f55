#!/usr/bin/env bash
# Tests scripts/apt-repo the way a user meets it: a repository built from the
# .deb with a throwaway signing key, served as file://, read by apt with its
# own sources, lists and cache (the machine's apt sources are not touched)
# and a deb822 entry with Signed-By naming the repository's keyring. apt must
# update from it with the signature verified, offer the package, and offer a
# second build with a higher version as an upgrade; a repository signed by
# another key, or whose InRelease was altered, must be refused. As root the
# package is really installed and upgraded, then purged; otherwise apt's
# resolver simulates both and the .deb is downloaded (hash-checked).
#
#   tests/package/check-apt-repo.sh target/packages/omnipanel_X.Y.Z_amd64.deb VERSION
set -euo pipefail
deb="$(realpath "${1:?usage: check-apt-repo.sh DEB VERSION}")"
version="${2:?usage: check-apt-repo.sh DEB VERSION}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
source "$root/scripts/lib/setup.sh"
command -v apt-ftparchive >/dev/null || need_packages apt-utils
command -v gpg >/dev/null || need_packages gnupg

fail() { printf 'check-apt-repo: %s\n' "$*" >&2; exit 1; }

work="$(mktemp -d)"
# apt reads file:// sources as its unprivileged _apt user when run as root.
chmod 755 "$work"
installed_here=false
cleanup() {
    if $installed_here; then
        dpkg --purge omnipanel >/dev/null 2>&1 || echo "check-apt-repo: could not purge omnipanel; run: sudo dpkg --purge omnipanel" >&2
    fi
    for home in "$work"/gnupg-*; do
        [ -d "$home" ] && gpgconf --homedir "$home" --kill all >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# A throwaway signing key, armoured, as the release workflow's secret is.
new_key() {
    local home="$work/gnupg-$1"
    mkdir -m 700 "$home"
    GNUPGHOME="$home" gpg --batch --quiet --passphrase '' \
        --quick-gen-key "OmniPanel apt test $1 <apt-test@invalid>" ed25519 sign never 2>/dev/null
    GNUPGHOME="$home" gpg --batch --armor --export-secret-keys >"$work/$1.asc"
}
new_key release
new_key forger

# The second build: the same package with a higher version.
upgrade_version="${version}+apttest1"
dpkg-deb -R "$deb" "$work/unpacked"
sed -i "s/^Version: .*/Version: $upgrade_version/" "$work/unpacked/DEBIAN/control"
dpkg-deb -Zgzip -z1 --root-owner-group -b "$work/unpacked" "$work/upgrade.deb" >/dev/null
rm -rf "$work/unpacked"

repo="$work/repo"
OMNIPANEL_APT_SIGNING_KEY_FILE="$work/release.asc" \
    "$root/scripts/apt-repo" --url "file://$repo" "$repo" "$deb"
for f in dists/stable/InRelease dists/stable/Release.gpg dists/stable/Release \
    dists/stable/main/binary-amd64/Packages.gz omnipanel-archive-keyring.gpg omnipanel.sources; do
    [ -s "$repo/$f" ] || fail "the repository lacks $f"
done
grep -qx "URIs: file://$repo" "$repo/omnipanel.sources" || fail "omnipanel.sources does not name the repository"

# apt with everything of its own under $work, reading only our entry.
mkdir -p "$work/apt/sources.list.d" "$work/apt/lists/partial" "$work/apt/archives/partial"
chmod -R 755 "$work/apt"
apt_opts=(
    -o Dir::Etc::SourceList=/dev/null
    -o Dir::Etc::SourceParts="$work/apt/sources.list.d"
    -o Dir::State::Lists="$work/apt/lists"
    -o Dir::Cache="$work/apt/cache"
    -o Dir::Cache::Archives="$work/apt/archives"
    -o APT::Get::List-Cleanup=false
)
point_at() { # REPOSITORY KEYRING
    sed -e "s|^URIs: .*|URIs: file://$1|" -e "s|^Signed-By: .*|Signed-By: $2|" \
        "$repo/omnipanel.sources" >"$work/apt/sources.list.d/omnipanel.sources"
    rm -rf "$work/apt/lists"/* "$work/apt/cache"
    mkdir -p "$work/apt/lists/partial"
}
update() { apt-get "${apt_opts[@]}" update --error-on=any >"$work/update.log" 2>&1; }
candidate() { apt-cache "${apt_opts[@]}" policy omnipanel | awk '/Candidate:/ { print $2 }'; }

# A repository signed by another key, and one whose InRelease was altered,
# are refused (the keyring is the release key's).
forged="$work/forged"
OMNIPANEL_APT_SIGNING_KEY_FILE="$work/forger.asc" "$root/scripts/apt-repo" "$forged" "$deb" 2>/dev/null
point_at "$forged" "$repo/omnipanel-archive-keyring.gpg"
if update; then fail "apt accepted a repository signed by another key"; fi
grep -qE 'NO_PUBKEY|not signed|signature' "$work/update.log" \
    || fail "apt refused the forged repository, but not for its signature: $(cat "$work/update.log")"
[ "$(candidate)" = "(none)" ] || [ -z "$(candidate)" ] || fail "the forged repository's package is offered"
altered="$work/altered"
cp -a "$repo" "$altered"
sed -i 's/^Description: OmniPanel packages$/Description: OmniPanel packages, altered/' "$altered/dists/stable/InRelease"
rm "$altered/dists/stable/Release" "$altered/dists/stable/Release.gpg"
point_at "$altered" "$altered/omnipanel-archive-keyring.gpg"
if update; then fail "apt accepted an altered InRelease"; fi

# The real repository: verified, and the package offered.
point_at "$repo" "$repo/omnipanel-archive-keyring.gpg"
update || fail "apt update from the repository failed: $(cat "$work/update.log")"
[ "$(candidate)" = "$version" ] || fail "apt offers '$(candidate)', not $version"

if [ "$(id -u)" -eq 0 ]; then
    if dpkg-query -W -f='${Status}' omnipanel 2>/dev/null | grep -q "install ok installed"; then
        fail "omnipanel is already installed on this machine; this test installs and purges it, so it leaves yours alone: remove it first (sudo dpkg --purge omnipanel)"
    fi
    installed_here=true
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends omnipanel >"$work/install.log" 2>&1 \
        || fail "apt could not install omnipanel: $(cat "$work/install.log")"
    [ "$(dpkg-query -W -f='${Version}' omnipanel)" = "$version" ] || fail "installed $(dpkg-query -W -f='${Version}' omnipanel), not $version"
    [ -f /usr/share/omnipanel/packaged-by ] || fail "the installed package has no /usr/share/omnipanel/packaged-by"
    /usr/bin/omnipanel --version >/dev/null || fail "the installed omnipanel does not run"
else
    apt-get "${apt_opts[@]}" -s install omnipanel 2>/dev/null | grep -q "^Inst omnipanel ($version " \
        || fail "apt would not install omnipanel $version"
    (cd "$work" && apt-get "${apt_opts[@]}" download omnipanel >/dev/null 2>&1) \
        || fail "apt could not download omnipanel from the repository"
    [ -f "$work/omnipanel_${version}_amd64.deb" ] || fail "apt downloaded no omnipanel_${version}_amd64.deb"
fi

# The same script adds a higher version: apt offers it as an upgrade.
OMNIPANEL_APT_SIGNING_KEY_FILE="$work/release.asc" \
    "$root/scripts/apt-repo" --url "file://$repo" "$repo" "$work/upgrade.deb" 2>/dev/null
[ "$(find "$repo/pool" -name '*.deb' | wc -l)" -eq 2 ] || fail "the pool does not keep both versions"
update || fail "apt update after the second build failed: $(cat "$work/update.log")"
[ "$(candidate)" = "$upgrade_version" ] || fail "apt offers '$(candidate)' after the second build, not $upgrade_version"
if [ "$(id -u)" -eq 0 ]; then
    apt list "${apt_opts[@]}" --upgradable 2>/dev/null | grep -q "^omnipanel/stable $upgrade_version " \
        || fail "apt does not list omnipanel $upgrade_version as upgradable"
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -qq --only-upgrade omnipanel >"$work/install.log" 2>&1 \
        || fail "apt could not upgrade omnipanel: $(cat "$work/install.log")"
    [ "$(dpkg-query -W -f='${Version}' omnipanel)" = "$upgrade_version" ] \
        || fail "the upgrade left $(dpkg-query -W -f='${Version}' omnipanel), not $upgrade_version"
    how="installed $version, upgraded to $upgrade_version, purged"
else
    apt-get "${apt_opts[@]}" -s install omnipanel 2>/dev/null | grep -q "^Inst omnipanel ($upgrade_version " \
        || fail "apt would not install omnipanel $upgrade_version"
    how="simulated install of $version and of $upgrade_version (not root)"
fi
echo "check-apt-repo: signed repository verified by apt; forged and altered ones refused; $how"
