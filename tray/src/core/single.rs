//! One panel at a time: the first panel listens on
//! `$XDG_RUNTIME_DIR/omnipanel/panel.sock`; a second one connects, asks it
//! to come to the front (and which tab to show), and exits. A socket left
//! by a panel that died is detected (nothing answers) and replaced.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::{
        fs::{DirBuilderExt, PermissionsExt},
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    time::Duration,
};

/// The socket of the open panel.
pub fn socket_path() -> PathBuf {
    omnipanel_client::location::runtime_dir().join("panel.sock")
}

/// The outcome of claiming the panel.
#[derive(Debug)]
pub enum Claim {
    /// We are the panel; requests to focus arrive on this listener.
    First(UnixListener),
    /// Another panel runs and was asked to focus.
    Signalled,
}

/// Become the panel at `path`, or signal the one running with `message`
/// (one line, e.g. `focus` or `focus models`).
pub fn claim(path: &Path, message: &str) -> std::io::Result<Claim> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    for _ in 0..3 {
        if signal(path, message).is_ok() {
            return Ok(Claim::Signalled);
        }
        // Nothing answers: a stale socket (or none). Replace it.
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        match UnixListener::bind(path) {
            Ok(listener) => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                return Ok(Claim::First(listener));
            }
            // Another panel bound it between our remove and bind: ask it.
            Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {}
            Err(err) => return Err(err),
        }
    }
    Err(std::io::Error::other(format!(
        "cannot claim {}: another panel keeps starting",
        path.display()
    )))
}

fn signal(path: &Path, message: &str) -> std::io::Result<()> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(message.as_bytes())?;
    stream.write_all(b"\n")?;
    Ok(())
}

/// Serve focus requests: calls `on_message` with each line received, on a
/// thread of its own (blocked in accept, no polling).
pub fn serve(
    listener: UnixListener,
    on_message: impl Fn(String) + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("panel-focus".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if stream
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .is_err()
                {
                    continue;
                }
                let mut line = String::new();
                if BufReader::new(stream).read_line(&mut line).is_ok() {
                    on_message(line.trim().to_owned());
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn second_claim_signals_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/panel.sock");
        let Claim::First(listener) = claim(&path, "focus").unwrap() else {
            panic!("first claim should win");
        };
        let (tx, rx) = mpsc::channel();
        serve(listener, move |m| {
            let _ = tx.send(m);
        })
        .unwrap();
        assert!(matches!(
            claim(&path, "focus models").unwrap(),
            Claim::Signalled
        ));
        assert_eq!(rx.recv().unwrap(), "focus models");
    }

    #[test]
    fn a_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("panel.sock");
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        assert!(matches!(claim(&path, "focus").unwrap(), Claim::First(_)));
    }
}
