//! What the desktop offers the tray: whether libayatana-appindicator can be
//! loaded (tray-icon panics without it), whether anything will show a tray
//! icon (a StatusNotifierWatcher on D-Bus, or an XEmbed system tray owning
//! `_NET_SYSTEM_TRAY_Sn`), and desktop notifications over D-Bus to tell the
//! user what is missing. All checks fail soft: an error means "no".

use gtk::{
    gio,
    glib::{self, ToVariant},
};

/// The library tray-icon loads on Linux.
pub const APPINDICATOR_LIB: &str = "libayatana-appindicator3.so.1";
/// The older library it falls back to.
pub const APPINDICATOR_LIB_OLD: &str = "libappindicator3.so.1";

/// What to install when the appindicator library is missing.
pub const INSTALL_HINT: &str = "install libayatana-appindicator3-1 (Debian/Ubuntu: `sudo apt install libayatana-appindicator3-1`)";

/// What to do when nothing shows tray icons.
pub const HOST_HINT: &str = "on GNOME install and enable the AppIndicator extension (`sudo apt install gnome-shell-extension-appindicator`, then log in again); elsewhere add a system tray / status notifier area to your panel";

/// Whether libayatana-appindicator (or libappindicator) can be loaded.
pub fn appindicator_available() -> bool {
    [APPINDICATOR_LIB, APPINDICATOR_LIB_OLD]
        .iter()
        .any(|name| can_load(name))
}

// dlopen needs unsafe: loading a library runs its initialisers. These are
// the very libraries tray-icon loads moments later in the same process, so
// probing them first adds no risk; the handle is dropped at once.
#[allow(unsafe_code)]
fn can_load(name: &str) -> bool {
    // SAFETY: see above; no symbol is used.
    unsafe { libloading::Library::new(name) }.is_ok()
}

/// Where a tray icon would be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayHost {
    /// A StatusNotifierWatcher (KDE, GNOME with the extension, waybar...).
    StatusNotifier,
    /// An XEmbed system tray (trayer, older panels).
    XEmbed,
    /// Nothing found.
    None,
}

/// Look for a tray host: D-Bus first, then X11.
pub fn detect_tray_host() -> TrayHost {
    if status_notifier_watcher() {
        TrayHost::StatusNotifier
    } else if xembed_tray() {
        TrayHost::XEmbed
    } else {
        TrayHost::None
    }
}

fn session_bus() -> Option<gio::DBusConnection> {
    // Without the variable gio would try to autolaunch a bus; a desktop
    // session always sets it.
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS")?;
    gio::bus_get_sync(gio::BusType::Session, gio::Cancellable::NONE)
        .map_err(|err| tracing::debug!("no session bus: {err}"))
        .ok()
}

fn status_notifier_watcher() -> bool {
    let Some(bus) = session_bus() else {
        return false;
    };
    let reply = bus.call_sync(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "NameHasOwner",
        Some(&("org.kde.StatusNotifierWatcher",).to_variant()),
        None,
        gio::DBusCallFlags::NONE,
        1000,
        gio::Cancellable::NONE,
    );
    match reply {
        Ok(reply) => reply.get::<(bool,)>().is_some_and(|(owned,)| owned),
        Err(err) => {
            tracing::debug!("asking D-Bus for a StatusNotifierWatcher: {err}");
            false
        }
    }
}

fn xembed_tray() -> bool {
    use x11rb::{connection::Connection as _, protocol::xproto::ConnectionExt as _};
    let Ok((conn, screen)) = x11rb::connect(None) else {
        return false;
    };
    let name = format!("_NET_SYSTEM_TRAY_S{screen}");
    let owner = conn
        .intern_atom(false, name.as_bytes())
        .ok()
        .and_then(|cookie| cookie.reply().ok())
        .and_then(|atom| conn.get_selection_owner(atom.atom).ok())
        .and_then(|cookie| cookie.reply().ok())
        .map(|reply| reply.owner);
    drop(conn.flush());
    owner.is_some_and(|window| window != x11rb::NONE)
}

/// Show a desktop notification; `false` when none could be sent (the
/// caller has logged the same text anyway).
pub fn notify(summary: &str, body: &str) -> bool {
    let Some(bus) = session_bus() else {
        return false;
    };
    let hints = glib::VariantDict::new(None).end();
    let actions: Vec<String> = Vec::new();
    let parameters = glib::Variant::tuple_from_iter([
        "OmniPanel".to_variant(),
        0u32.to_variant(),
        "dialog-warning".to_variant(),
        summary.to_variant(),
        body.to_variant(),
        actions.to_variant(),
        hints,
        (-1i32).to_variant(),
    ]);
    let sent = bus.call_sync(
        Some("org.freedesktop.Notifications"),
        "/org/freedesktop/Notifications",
        "org.freedesktop.Notifications",
        "Notify",
        Some(&parameters),
        None,
        gio::DBusCallFlags::NONE,
        2000,
        gio::Cancellable::NONE,
    );
    match sent {
        Ok(_) => true,
        Err(err) => {
            tracing::debug!("desktop notification not sent: {err}");
            false
        }
    }
}
