//! The requests to stop that come as signals: SIGTERM (the session ending,
//! a service manager, `kill`) and SIGINT (Ctrl-C in a terminal). The tray
//! and the panel end their loops on them as on their own Quit and Esc, so
//! each exits through its normal path: the panel saves its window state,
//! the tray takes its icon down, and an instrumented build writes its
//! coverage profile (`scripts/coverage`; a process the signal's default
//! action ends writes nothing).

use tokio::{
    runtime::Runtime,
    signal::unix::{SignalKind, signal},
};

/// Listen for SIGTERM and SIGINT from now on (registered before this
/// returns, so a signal that comes while the window opens is not lost) and
/// call `stop` with the signal's name at the first. Fails only when the
/// handlers cannot be installed; the caller then keeps the default (the
/// process ends at once).
pub fn on_stop_signal(
    runtime: &Runtime,
    stop: impl FnOnce(&'static str) + Send + 'static,
) -> std::io::Result<()> {
    let _in_runtime = runtime.enter();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    runtime.spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        stop(name);
    });
    Ok(())
}
