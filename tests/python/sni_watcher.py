"""A test StatusNotifierWatcher, and the D-Bus checks of the tray's item.

tray/sni-smoke.sh runs it on the test's own session bus before the tray,
so the tray takes the path KDE, GNOME (with the AppIndicator extension)
and Xfce take: libayatana-appindicator finds `org.kde.StatusNotifierWatcher`
on `/StatusNotifierWatcher`, registers its StatusNotifierItem there, and
serves its menu over `com.canonical.dbusmenu`.

The watcher answers what a real one answers: RegisterStatusNotifierItem
(a bus name, or an object path on the caller's connection, as libayatana
sends), RegisterStatusNotifierHost, the properties
RegisteredStatusNotifierItems, IsStatusNotifierHostRegistered (true: a
host "shows" the items) and ProtocolVersion, and the signals. When the
first item registers it checks it as a host would: reads the item's
properties (Title, Status, IconName or IconPixmap, Menu), fetches the menu
with `GetLayout`, finds "Open panel" and clicks it with
`Event(id, "clicked", ...)`. What it saw goes to the report file as JSON
(`{"error": ...}` when a step failed); the script then checks it and
waits for the panel's window. It keeps serving until it is stopped, so the
tray's item stays registered.

usage: sni_watcher.py REPORT_FILE
"""

import asyncio
import json
import os
import signal as os_signal
import sys
from typing import Any

from dbus_fast import BusType, Message, MessageType, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, dbus_property, signal

WATCHER_NAME = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ITEM_INTERFACE = "org.kde.StatusNotifierItem"
MENU_INTERFACE = "com.canonical.dbusmenu"
# The menu item the check clicks: the tray's first, as in the XEmbed smoke.
OPEN_PANEL = "Open panel"


class Watcher(ServiceInterface):
    """The org.kde.StatusNotifierWatcher interface: properties and signals.

    Registration is a method that needs the caller's unique name, which a
    ServiceInterface method does not get; `Registrar` handles it and calls
    `add_item` here.
    """

    def __init__(self) -> None:
        super().__init__(WATCHER_NAME)
        self.items: list[str] = []

    def add_item(self, item: str) -> None:
        if item not in self.items:
            self.items.append(item)
            self.StatusNotifierItemRegistered(item)

    def remove_owner(self, owner: str) -> None:
        for item in [i for i in self.items if i.split("/", 1)[0] == owner]:
            self.items.remove(item)
            self.StatusNotifierItemUnregistered(item)

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> "as":  # noqa: F722, N802
        return list(self.items)

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> "b":  # noqa: F821, N802
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> "i":  # noqa: F821, N802
        return 0

    @signal()
    def StatusNotifierItemRegistered(self, item: str) -> "s":  # noqa: F821, N802
        return item

    @signal()
    def StatusNotifierItemUnregistered(self, item: str) -> "s":  # noqa: F821, N802
        return item

    @signal()
    def StatusNotifierHostRegistered(self) -> None:  # noqa: N802
        return None


class Registrar:
    """Answers the watcher's two methods from raw messages (for the sender)."""

    def __init__(self, watcher: Watcher, registered: asyncio.Queue[str]) -> None:
        self.watcher = watcher
        self.registered = registered

    def __call__(self, msg: Message) -> Message | bool | None:
        if msg.message_type is MessageType.SIGNAL and msg.member == "NameOwnerChanged":
            name, _old, new = msg.body
            if name.startswith(":") and not new:
                self.watcher.remove_owner(name)
            return None
        if (
            msg.message_type is not MessageType.METHOD_CALL
            or msg.interface != WATCHER_NAME
            or msg.path != WATCHER_PATH
        ):
            return None
        if msg.member == "RegisterStatusNotifierItem":
            (service,) = msg.body
            # libayatana sends its object path; others send a bus name
            # (their item then lives on /StatusNotifierItem).
            if service.startswith("/"):
                item = f"{msg.sender}{service}"
            else:
                item = f"{service}/StatusNotifierItem"
            self.watcher.add_item(item)
            self.registered.put_nowait(item)
            return Message.new_method_return(msg)
        if msg.member == "RegisterStatusNotifierHost":
            self.watcher.StatusNotifierHostRegistered()
            return Message.new_method_return(msg)
        return None


async def call(bus: MessageBus, dest: str, path: str, iface: str, member: str,
               signature: str = "", body: list[Any] | None = None) -> list[Any]:
    reply = await bus.call(Message(destination=dest, path=path, interface=iface,
                                   member=member, signature=signature, body=body or []))
    if reply is None or reply.message_type is MessageType.ERROR:
        detail = reply.body if reply is not None else "no reply"
        raise RuntimeError(f"{iface}.{member} on {dest}{path} failed: {reply and reply.error_name}: {detail}")
    return list(reply.body)


def plain(value: Any) -> Any:
    """A property value as JSON can hold it (pixmaps as their sizes)."""
    if isinstance(value, Variant):
        value = value.value
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def menu_items(layout: list[Any], out: list[dict[str, Any]]) -> None:
    """Flatten a dbusmenu layout (id, properties, children) into `out`."""
    item_id, props, children = layout
    label = props.get("label")
    out.append({
        "id": item_id,
        # GTK mnemonics: "_Open" shows as "Open".
        "label": label.value.replace("_", "") if label is not None else "",
        "type": props["type"].value if "type" in props else "standard",
        "enabled": props["enabled"].value if "enabled" in props else True,
    })
    for child in children:
        menu_items(child.value, out)


async def check(bus: MessageBus, item: str) -> dict[str, Any]:
    """What a host does with a new item: read it, its menu, click Open panel."""
    dest, path = item.split("/", 1)
    path = "/" + path
    (props,) = await call(bus, dest, path, "org.freedesktop.DBus.Properties", "GetAll", "s",
                          [ITEM_INTERFACE])
    properties = {key: plain(value) for key, value in props.items()
                  if key in ("Id", "Title", "Status", "Category", "IconName",
                             "IconThemePath", "Menu", "ToolTip")}
    if "IconPixmap" in props:
        properties["IconPixmap"] = [[w, h, len(data)] for w, h, data in props["IconPixmap"].value]
    menu_path = properties.get("Menu")
    if not menu_path:
        raise RuntimeError(f"the item has no Menu property: {sorted(props)}")
    # A host asks before showing the menu; dbusmenu-gtk may fill it then.
    await call(bus, dest, menu_path, MENU_INTERFACE, "AboutToShow", "i", [0])
    _revision, layout = await call(bus, dest, menu_path, MENU_INTERFACE, "GetLayout", "iias",
                                   [0, -1, []])
    items: list[dict[str, Any]] = []
    menu_items(layout, items)
    open_panel = next((i for i in items if i["label"] == OPEN_PANEL), None)
    if open_panel is None:
        raise RuntimeError(f"no {OPEN_PANEL!r} in the menu: {[i['label'] for i in items]}")
    await call(bus, dest, menu_path, MENU_INTERFACE, "Event", "isvu",
               [open_panel["id"], "clicked", Variant("s", ""), 0])
    return {"item": item, "properties": properties,
            "menu": [i["label"] for i in items if i["id"] != 0], "clicked": open_panel["id"]}


def write_report(path: str, report: dict[str, Any]) -> None:
    # Whole or not at all: the script polls for the file.
    with open(path + ".tmp", "w", encoding="utf-8") as out:
        json.dump(report, out, indent=2)
    os.replace(path + ".tmp", path)


async def main(report_path: str) -> None:
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    watcher = Watcher()
    registered: asyncio.Queue[str] = asyncio.Queue()
    bus.add_message_handler(Registrar(watcher, registered))
    bus.export(WATCHER_PATH, watcher)
    # Items that leave the bus leave the list, as with a real watcher.
    await call(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
               "AddMatch", "s",
               ["type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'"])
    await bus.request_name(WATCHER_NAME)
    print("sni_watcher: ready", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (os_signal.SIGTERM, os_signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def check_first() -> None:
        item = await registered.get()
        print(f"sni_watcher: item registered: {item}", flush=True)
        try:
            report = await asyncio.wait_for(check(bus, item), timeout=30)
        except Exception as err:  # noqa: BLE001 - every failure goes to the report
            report = {"item": item, "error": f"{type(err).__name__}: {err}"}
        write_report(report_path, report)
        print(f"sni_watcher: report written to {report_path}", flush=True)

    checking = asyncio.create_task(check_first())
    await stop.wait()
    checking.cancel()
    bus.disconnect()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1]))
