//! The GTK thread: `gtk::init`, the tray icon with its muda menu, and
//! `gtk::main`. It takes [`GtkMsg`]s (new menu, new icon, quit) from a
//! channel that a future on the GTK main context awaits, and hands menu
//! clicks to a callback (the winit event-loop proxy). A menu of the same
//! shape is updated in place, so progress does not close an open menu.

use std::cell::RefCell;

use gtk::glib;
use tokio::sync::mpsc;
use tray_icon::{
    Icon, TrayIcon, TrayIconBuilder,
    menu::{CheckMenuItem, IsMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu},
};

use crate::{
    icon,
    menu::{self, Entry},
    views::IconState,
};

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
    shape: Vec<String>,
    handles: Vec<Handle>,
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
        shape: menu::shape(entries),
        handles,
    })
}

impl Tray {
    fn set_menu(&mut self, entries: &[Entry]) {
        let shape = menu::shape(entries);
        if shape == self.shape {
            update_in_place(&self.handles, entries);
            return;
        }
        let mut handles = Vec::new();
        match build_menu(entries, &mut handles) {
            Ok(menu) => {
                self.icon.set_menu(Some(Box::new(menu)));
                self.handles = handles;
                self.shape = shape;
            }
            Err(err) => tracing::warn!("cannot rebuild the tray menu: {err}"),
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
