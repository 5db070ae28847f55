//! The GTK thread: `gtk::init`, the tray icon with its muda menu, and
//! `gtk::main`. It takes [`GtkMsg`]s (new menu, new icon, quit) from a
//! channel that a future on the GTK main context awaits, and hands menu
//! clicks to a callback (the winit event-loop proxy). A menu of the same
//! shape is updated in place, so progress does not close an open menu; one
//! of another shape replaces it only while it is closed (`MenuSync`).

use std::cell::RefCell;

use gtk::{glib, prelude::WidgetExt};
use tokio::sync::mpsc;
use tray_icon::{
    Icon, TrayIcon, TrayIconBuilder,
    menu::{
        CheckMenuItem, ContextMenu, IsMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem,
        Submenu,
    },
};

use super::menu::{self, Entry};
use crate::core::{icon, views::IconState};

/// The pixel size handed to the indicator (panels scale it down).
pub const TRAY_ICON_SIZE: u32 = 48;

/// What the winit side asks of the GTK thread.
#[derive(Debug)]
pub enum GtkMsg {
    /// Show this menu.
    Menu(Vec<Entry>),
    /// Show this icon.
    Icon(IconState),
    /// Leave `gtk::main`.
    Quit,
}

enum Handle {
    Text(MenuItem),
    Check(CheckMenuItem),
    Submenu,
    Separator,
}

struct Tray {
    icon: TrayIcon,
    /// The GTK menu the indicator pops up (visible while it is open).
    gtk_menu: gtk::Menu,
    sync: MenuSync,
    handles: Vec<Handle>,
}

/// How a new menu reaches the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MenuChange {
    /// Same shape: change the texts and states of the items shown.
    InPlace,
    /// Another shape while the menu is closed: build a new menu.
    Rebuild,
    /// Another shape while the menu is open: keep it until it closes.
    /// Replacing it would destroy it under the user's pointer (the click
    /// that opened it lost), and the agent's first answers after start-up
    /// change the shape several times within a second.
    Defer,
}

/// Which menu shape is shown, and the menu waiting for the open one to
/// close. Pure, so the decisions are unit-tested without GTK.
#[derive(Debug)]
struct MenuSync {
    shape: Vec<String>,
    pending: Option<Vec<Entry>>,
}

impl MenuSync {
    fn new(entries: &[Entry]) -> Self {
        Self {
            shape: menu::shape(entries),
            pending: None,
        }
    }

    /// What to do with `entries`; `open`: whether the menu is on screen.
    /// After [`MenuChange::Rebuild`] the caller reports [`Self::rebuilt`].
    fn offer(&mut self, entries: &[Entry], open: bool) -> MenuChange {
        if menu::shape(entries) == self.shape {
            // Whatever waited is out of date: this is the latest menu.
            self.pending = None;
            MenuChange::InPlace
        } else if open {
            self.pending = Some(entries.to_vec());
            MenuChange::Defer
        } else {
            self.pending = None;
            MenuChange::Rebuild
        }
    }

    /// A menu for `entries` now shows.
    fn rebuilt(&mut self, entries: &[Entry]) {
        self.shape = menu::shape(entries);
    }

    /// The menu closed: the one that waited, if any.
    fn closed(&mut self) -> Option<Vec<Entry>> {
        self.pending.take()
    }
}

thread_local! {
    static TRAY: RefCell<Option<Tray>> = const { RefCell::new(None) };
}

/// Start the GTK thread with the first menu and icon; `on_menu` gets the
/// id of every clicked item. Returns the channel to the thread once the
/// tray exists, or why it could not be made.
pub fn start(
    entries: Vec<Entry>,
    state: IconState,
    on_menu: impl Fn(String) + Send + Sync + 'static,
) -> Result<mpsc::UnboundedSender<GtkMsg>, String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("gtk".into())
        .spawn(move || {
            // On the StatusNotifierItem path the item's Title (what KDE,
            // GNOME's extension and Xfce show as its name) is the
            // application name; tray-icon's `with_title` sets only the
            // label beside the icon, so without this hosts said
            // "omnipanel-tray" (tray/sni-smoke.sh checks it).
            glib::set_application_name("OmniPanel");
            if let Err(err) = gtk::init() {
                let _ = ready_tx.send(Err(format!("GTK could not start: {err}")));
                return;
            }
            MenuEvent::set_event_handler(Some(move |event: MenuEvent| on_menu(event.id.0)));
            match create(&entries, state) {
                Ok(tray) => TRAY.with(|t| *t.borrow_mut() = Some(tray)),
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                    return;
                }
            }
            glib::MainContext::default().spawn_local(receive(rx));
            let _ = ready_tx.send(Ok(()));
            gtk::main();
            // Drop the tray on this thread, where it was made.
            TRAY.with(|t| t.borrow_mut().take());
        })
        .map_err(|err| format!("cannot start the GTK thread: {err}"))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(tx),
        Ok(Err(err)) => Err(err),
        Err(_) => Err("the GTK thread ended while starting".to_owned()),
    }
}

async fn receive(mut rx: mpsc::UnboundedReceiver<GtkMsg>) {
    while let Some(message) = rx.recv().await {
        match message {
            GtkMsg::Quit => break,
            GtkMsg::Menu(entries) => TRAY.with(|t| {
                if let Some(tray) = t.borrow_mut().as_mut() {
                    tray.set_menu(&entries);
                }
            }),
            GtkMsg::Icon(state) => {
                let Some(icon) = tray_icon(state) else {
                    continue;
                };
                TRAY.with(|t| {
                    if let Some(tray) = t.borrow().as_ref()
                        && let Err(err) = tray.icon.set_icon(Some(icon))
                    {
                        tracing::warn!("cannot change the tray icon: {err}");
                    }
                });
            }
        }
    }
    gtk::main_quit();
}

fn tray_icon(state: IconState) -> Option<Icon> {
    let rgba = icon::rasterize(state, TRAY_ICON_SIZE);
    Icon::from_rgba(rgba, TRAY_ICON_SIZE, TRAY_ICON_SIZE)
        .map_err(|err| tracing::warn!("bad tray icon: {err}"))
        .ok()
}

fn create(entries: &[Entry], state: IconState) -> Result<Tray, String> {
    let mut handles = Vec::new();
    let menu = build_menu(entries, &mut handles)?;
    let gtk_menu = watch_menu(&menu);
    let mut builder = TrayIconBuilder::new()
        .with_id("omnipanel")
        .with_tooltip("OmniPanel")
        .with_title("OmniPanel")
        .with_menu(Box::new(menu));
    if let Some(icon) = tray_icon(state) {
        builder = builder.with_icon(icon);
    }
    let icon = builder
        .build()
        .map_err(|err| format!("cannot create the tray icon: {err}"))?;
    Ok(Tray {
        icon,
        gtk_menu,
        sync: MenuSync::new(entries),
        handles,
    })
}

/// The GTK menu behind `menu` (muda makes it once and hands the indicator
/// the same one), with a handler that shows a deferred menu once it closes.
fn watch_menu(menu: &Menu) -> gtk::Menu {
    let gtk_menu = menu.gtk_context_menu();
    gtk_menu.connect_hide(|_| {
        // Later, not inside GTK's popdown (and never while TRAY is borrowed).
        glib::idle_add_local_once(|| {
            TRAY.with(|t| {
                if let Some(tray) = t.borrow_mut().as_mut() {
                    tray.menu_closed();
                }
            });
        });
    });
    gtk_menu
}

impl Tray {
    fn set_menu(&mut self, entries: &[Entry]) {
        match self.sync.offer(entries, self.gtk_menu.is_visible()) {
            MenuChange::InPlace => update_in_place(&self.handles, entries),
            MenuChange::Defer => {
                tracing::debug!("tray menu open: its new shape waits until it closes")
            }
            MenuChange::Rebuild => {
                let mut handles = Vec::new();
                match build_menu(entries, &mut handles) {
                    Ok(menu) => {
                        self.gtk_menu = watch_menu(&menu);
                        self.icon.set_menu(Some(Box::new(menu)));
                        self.handles = handles;
                        self.sync.rebuilt(entries);
                    }
                    Err(err) => tracing::warn!("cannot rebuild the tray menu: {err}"),
                }
            }
        }
    }

    fn menu_closed(&mut self) {
        if let Some(entries) = self.sync.closed() {
            self.set_menu(&entries);
        }
    }
}

fn build_menu(entries: &[Entry], handles: &mut Vec<Handle>) -> Result<Menu, String> {
    let menu = Menu::new();
    for item in make_items(entries, handles)? {
        menu.append(item.as_ref()).map_err(|e| e.to_string())?;
    }
    Ok(menu)
}

/// The muda items for `entries`; `handles` receives them in pre-order
/// (a submenu before its children), the order [`flatten`] walks.
fn make_items(
    entries: &[Entry],
    handles: &mut Vec<Handle>,
) -> Result<Vec<Box<dyn IsMenuItem>>, String> {
    let mut items: Vec<Box<dyn IsMenuItem>> = Vec::new();
    for entry in entries {
        match entry {
            Entry::Label(text) => {
                let item = MenuItem::new(text, false, None);
                handles.push(Handle::Text(item.clone()));
                items.push(Box::new(item));
            }
            Entry::Item {
                text,
                action,
                enabled,
            } => {
                let item = MenuItem::with_id(action.id(), text, *enabled, None);
                handles.push(Handle::Text(item.clone()));
                items.push(Box::new(item));
            }
            Entry::Check {
                text,
                action,
                checked,
            } => {
                let item = CheckMenuItem::with_id(action.id(), text, true, *checked, None);
                handles.push(Handle::Check(item.clone()));
                items.push(Box::new(item));
            }
            Entry::Submenu { text, entries } => {
                let submenu = Submenu::new(text, true);
                handles.push(Handle::Submenu);
                for child in make_items(entries, handles)? {
                    submenu.append(child.as_ref()).map_err(|e| e.to_string())?;
                }
                items.push(Box::new(submenu));
            }
            Entry::Separator => {
                handles.push(Handle::Separator);
                items.push(Box::new(PredefinedMenuItem::separator()));
            }
        }
    }
    Ok(items)
}

fn flatten<'a>(entries: &'a [Entry], out: &mut Vec<&'a Entry>) {
    for entry in entries {
        out.push(entry);
        if let Entry::Submenu { entries, .. } = entry {
            flatten(entries, out);
        }
    }
}

fn update_in_place(handles: &[Handle], entries: &[Entry]) {
    let mut flat = Vec::new();
    flatten(entries, &mut flat);
    for (handle, entry) in handles.iter().zip(flat) {
        match (handle, entry) {
            (Handle::Text(item), Entry::Label(text)) if item.text() != *text => {
                item.set_text(text);
            }
            (Handle::Text(item), Entry::Item { text, enabled, .. }) => {
                if item.text() != *text {
                    item.set_text(text);
                }
                if item.is_enabled() != *enabled {
                    item.set_enabled(*enabled);
                }
            }
            (Handle::Check(item), Entry::Check { text, checked, .. }) => {
                if item.text() != *text {
                    item.set_text(text);
                }
                // Always: GTK flips a check item when clicked, the state
                // decides what it shows.
                item.set_checked(*checked);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tray::menu::Action;

    fn open_panel() -> Entry {
        Entry::Item {
            text: "Open panel".into(),
            action: Action::OpenPanel,
            enabled: true,
        }
    }

    fn disconnected_menu() -> Vec<Entry> {
        vec![Entry::Label("Agent: connecting".into()), open_panel()]
    }

    fn connected_menu(server: &str) -> Vec<Entry> {
        vec![
            Entry::Label("Agent: running".into()),
            Entry::Label(server.into()),
            open_panel(),
        ]
    }

    #[test]
    fn same_shape_updates_in_place_open_or_not() {
        let mut sync = MenuSync::new(&connected_menu("Ollama: starting"));
        let next = connected_menu("Ollama: running");
        assert_eq!(sync.offer(&next, false), MenuChange::InPlace);
        assert_eq!(sync.offer(&next, true), MenuChange::InPlace);
        assert_eq!(sync.closed(), None);
    }

    #[test]
    fn another_shape_rebuilds_a_closed_menu() {
        let mut sync = MenuSync::new(&disconnected_menu());
        let next = connected_menu("Ollama: running");
        assert_eq!(sync.offer(&next, false), MenuChange::Rebuild);
        sync.rebuilt(&next);
        assert_eq!(sync.offer(&next, false), MenuChange::InPlace);
        assert_eq!(sync.closed(), None);
    }

    #[test]
    fn another_shape_waits_for_an_open_menu_to_close() {
        let mut sync = MenuSync::new(&disconnected_menu());
        let first = connected_menu("Ollama: starting");
        let latest = connected_menu("Ollama: running");
        assert_eq!(sync.offer(&first, true), MenuChange::Defer);
        assert_eq!(sync.offer(&latest, true), MenuChange::Defer);
        // Closing hands over the latest menu, once; it is then rebuilt.
        let waiting = sync.closed();
        assert_eq!(waiting.as_deref(), Some(latest.as_slice()));
        assert_eq!(sync.closed(), None);
        assert_eq!(sync.offer(&latest, false), MenuChange::Rebuild);
    }

    #[test]
    fn a_menu_of_the_shown_shape_drops_the_waiting_one() {
        let shown = disconnected_menu();
        let mut sync = MenuSync::new(&shown);
        assert_eq!(
            sync.offer(&connected_menu("Ollama: running"), true),
            MenuChange::Defer
        );
        // The agent went away again while the menu was open.
        assert_eq!(sync.offer(&shown, true), MenuChange::InPlace);
        assert_eq!(sync.closed(), None);
    }
}
