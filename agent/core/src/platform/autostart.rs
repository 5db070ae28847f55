//! Registering the login item with the OS through the `auto-launch` crate
//! (XDG autostart on Linux, a LaunchAgent on macOS, the Run key on
//! Windows), and reading the registration back.
//!
//! On Linux the crate has gaps worked around here: it writes
//! `$HOME/.config/autostart` even when `XDG_CONFIG_HOME` points elsewhere
//! (desktops read `$XDG_CONFIG_HOME/autostart`), its `Exec=` line is not
//! quoted (a path with spaces runs the wrong program), and its `is_enabled`
//! only checks that a file exists (a desktop's "Hidden=true" or
//! "X-GNOME-Autostart-enabled=false" switch is ignored). So after the crate
//! registers, the entry is rewritten with a quoted `Exec=` at the XDG
//! location, and the status is always read back from the file itself.

#[cfg(target_os = "linux")]
use std::path::{Path, PathBuf};

#[cfg(target_os = "linux")]
use crate::autostart::{parse_desktop_entry, render_desktop_entry};
use crate::{
    autostart::{APP_NAME, Autostart, AutostartStatus},
    error::{Error, Result},
};

fn launcher(autostart: &Autostart) -> Result<auto_launch::AutoLaunch> {
    let program = autostart.program.to_str().ok_or_else(|| {
        Error::failed_precondition(format!(
            "{} is not valid UTF-8, which login items cannot hold; install OmniPanel under a plain path",
            autostart.program.display()
        ))
    })?;
    let mut builder = auto_launch::AutoLaunchBuilder::new();
    builder
        .set_app_name(APP_NAME)
        .set_app_path(program)
        .set_args(&autostart.args);
    #[cfg(target_os = "linux")]
    builder.set_linux_launch_mode(auto_launch::LinuxLaunchMode::XdgAutostart);
    #[cfg(target_os = "macos")]
    builder.set_macos_launch_mode(auto_launch::MacOSLaunchMode::LaunchAgent);
    builder
        .build()
        .map_err(|err| Error::internal(format!("cannot prepare the login item: {err}")))
}

/// Read the registration as it is now: on Linux from the `.desktop` file
/// desktops read.
#[cfg(target_os = "linux")]
pub fn status(autostart: &Autostart) -> Result<AutostartStatus> {
    let path = autostart.desktop_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(AutostartStatus {
                enabled: false,
                location: path.display().to_string(),
                program: String::new(),
            });
        }
        Err(err) => {
            return Err(Error::internal(format!(
                "cannot read {}: {err}",
                path.display()
            )));
        }
    };
    let entry = parse_desktop_entry(&text);
    Ok(AutostartStatus {
        enabled: entry.enabled,
        location: path.display().to_string(),
        program: entry.program,
    })
}

/// Read the registration as it is now, as the crate sees it.
#[cfg(not(target_os = "linux"))]
pub fn status(autostart: &Autostart) -> Result<AutostartStatus> {
    let enabled = launcher(autostart)?
        .is_enabled()
        .map_err(|err| Error::internal(format!("cannot read the login item: {err}")))?;
    Ok(AutostartStatus {
        enabled,
        location: APP_NAME.to_owned(),
        program: if enabled {
            autostart.program.display().to_string()
        } else {
            String::new()
        },
    })
}

/// Turn start-at-login on or off; returns the status read back.
pub fn set(autostart: &Autostart, enabled: bool) -> Result<AutostartStatus> {
    let launcher = launcher(autostart)?;
    if enabled {
        launcher
            .enable()
            .map_err(|err| Error::internal(format!("cannot register the login item: {err}")))?;
        #[cfg(target_os = "linux")]
        fix_desktop_entry(autostart)?;
    } else {
        launcher
            .disable()
            .map_err(|err| Error::internal(format!("cannot remove the login item: {err}")))?;
        #[cfg(target_os = "linux")]
        remove_if_present(&autostart.desktop_file())?;
    }
    status(autostart)
}

/// Where auto-launch itself writes the entry (Linux): always under
/// `$HOME/.config`.
#[cfg(target_os = "linux")]
fn crate_desktop_file(autostart: &Autostart) -> PathBuf {
    autostart
        .home
        .join(".config")
        .join("autostart")
        .join(format!("{APP_NAME}.desktop"))
}

/// Replace what auto-launch wrote with a correctly quoted entry at the
/// XDG location, and remove its copy when that is elsewhere.
#[cfg(target_os = "linux")]
fn fix_desktop_entry(autostart: &Autostart) -> Result<()> {
    let path = autostart.desktop_file();
    let text = render_desktop_entry(&autostart.program, &autostart.args);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|err| Error::internal(format!("cannot create {}: {err}", dir.display())))?;
    }
    crate::atomic_file::write_atomically(&path, text.as_bytes())
        .map_err(|err| Error::internal(format!("cannot write {}: {err}", path.display())))?;
    let crate_file = crate_desktop_file(autostart);
    if crate_file != path {
        remove_if_present(&crate_file)?;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::internal(format!(
            "cannot remove {}: {err}",
            path.display()
        ))),
    }
}
