//! `omnipanel models pull`: start or attach to a pull and show its
//! progress (a bar on a terminal, else a line or JSON object per update);
//! Ctrl-C detaches and leaves the pull running in the agent.

use std::{
    io::IsTerminal,
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use omnipanel_client::{Client, display};
use omnipanel_proto::v1::{self as pb, PullModelRequest};

use super::{fit_verdict, verdict_words};
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    Failure,
    output::{Output, emit, errln, outln},
};

fn pull_state(state: i32) -> pb::PullState {
    pb::PullState::try_from(state).unwrap_or(pb::PullState::Unspecified)
}

/// How pull progress is shown: a bar on a terminal, else a line (or JSON
/// object) per update.
enum PullView {
    Bar {
        bar: ProgressBar,
        /// The agent's speed and ETA: it measures over the whole pull, which
        /// a client that attached midway could not.
        speed: Arc<AtomicU64>,
        eta: Arc<AtomicI64>,
    },
    Lines {
        last: String,
    },
    Json(Output),
}

impl PullView {
    fn new(out: Output) -> Self {
        if out.is_json() {
            return Self::Json(out);
        }
        if !std::io::stdout().is_terminal() {
            return Self::Lines {
                last: String::new(),
            };
        }
        let speed = Arc::new(AtomicU64::new(0));
        let eta = Arc::new(AtomicI64::new(-1));
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        let (speed_key, eta_key) = (Arc::clone(&speed), Arc::clone(&eta));
        // The template is a constant; should it ever fail to parse, the
        // default style still shows progress.
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{bar:20}] {done} / {total}  {speed}  {eta_left}  {wide_msg}",
        ) {
            bar.set_style(
                style
                    .progress_chars("=> ")
                    .with_key(
                        "done",
                        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = w.write_str(&display::bytes(state.pos()));
                        },
                    )
                    .with_key(
                        "total",
                        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let total = state.len().unwrap_or_default();
                            let text = if total == 0 {
                                "?".to_owned()
                            } else {
                                display::bytes(total)
                            };
                            let _ = w.write_str(&text);
                        },
                    )
                    .with_key(
                        "speed",
                        move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let bps = speed_key.load(Ordering::Relaxed);
                            let _ = write!(w, "{}/s", display::bytes(bps));
                        },
                    )
                    .with_key(
                        "eta_left",
                        move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let secs = eta_key.load(Ordering::Relaxed);
                            let text = if secs < 0 {
                                "ETA ?".to_owned()
                            } else {
                                format!("ETA {}", display::duration(secs.unsigned_abs()))
                            };
                            let _ = w.write_str(&text);
                        },
                    ),
            );
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Self::Bar { bar, speed, eta }
    }

    /// Print a line to stderr without tearing the bar.
    fn warn(&self, text: &str) {
        match self {
            Self::Bar { bar, .. } => bar.suspend(|| errln!("omnipanel: warning: {text}")),
            _ => errln!("omnipanel: warning: {text}"),
        }
    }

    fn update(&mut self, response: &pb::PullModelResponse) -> Result<(), Failure> {
        let progress = response.progress.clone().unwrap_or_default();
        match self {
            Self::Json(out) => out.json(response)?,
            Self::Lines { last } => {
                let line = display::describe_pull(&progress);
                if line != *last {
                    emit(&format!("{line}\n"))?;
                    *last = line;
                }
            }
            Self::Bar { bar, speed, eta } => {
                speed.store(progress.bytes_per_second, Ordering::Relaxed);
                eta.store(progress.eta_seconds, Ordering::Relaxed);
                let total = progress.total_bytes.max(progress.completed_bytes);
                // An unknown total stays unset: indicatif draws a zero
                // length as a full bar.
                if total > 0 {
                    bar.set_length(total);
                }
                bar.set_position(progress.completed_bytes);
                bar.set_message(bar_message(&progress));
            }
        }
        Ok(())
    }

    fn clear(&self) {
        if let Self::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

fn bar_message(progress: &pb::PullProgress) -> String {
    if pull_state(progress.state) == pb::PullState::Retrying {
        return format!(
            "retrying (attempt {}): {}",
            progress.attempt, progress.error
        );
    }
    let mut message = progress.status.clone();
    if !progress.current_layer.is_empty() && !message.contains(&progress.current_layer) {
        message.push_str(&format!(" {}", progress.current_layer));
    }
    if progress.layers_total > 1 {
        let current = (progress.layers_done + 1).min(progress.layers_total);
        message.push_str(&format!(" (layer {current}/{})", progress.layers_total));
    }
    message
}

/// How following a pull ended.
enum PullEnd {
    /// The stream ended; the last progress seen, if any.
    Finished(Option<pb::PullProgress>),
    /// Ctrl-C: the pull goes on in the agent.
    Detached,
}

/// What Ctrl-C during a pull prints: the pull goes on, and the commands
/// that reach it again, which need the same provider to find it.
fn detach_message(name: &str, provider: &str) -> String {
    let provider = if provider.is_empty() {
        String::new()
    } else {
        format!(" --provider {provider}")
    };
    format!(
        "detached: the pull of {name} continues in the agent; `omnipanel models pull {name}{provider}` shows it again, `omnipanel models cancel {name}{provider}` stops it"
    )
}

pub async fn pull(
    client: &Client,
    name: String,
    provider: String,
    insecure: bool,
    out: Output,
) -> Result<(), Failure> {
    // Listen for Ctrl-C before anything else, so an early one detaches
    // cleanly instead of killing the process mid-draw.
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|err| Failure::Other(format!("cannot watch for Ctrl-C: {err}")))?;
    let request = PullModelRequest {
        model: name.clone(),
        provider: provider.clone(),
        insecure,
    };
    let mut view = PullView::new(out);
    let end = async {
        let mut models = client.models();
        let started = tokio::select! {
            response = models.pull_model(request) => response,
            // The agent may already have started the pull.
            _ = interrupt.recv() => return Ok::<_, Failure>(PullEnd::Detached),
        };
        let mut stream = client.stream(started)?;
        let mut last = None;
        loop {
            let message = tokio::select! {
                message = stream.message() => message?,
                _ = interrupt.recv() => return Ok(PullEnd::Detached),
            };
            let Some(message) = message else {
                return Ok(PullEnd::Finished(last));
            };
            if let Some(fit) = &message.fit {
                let verdict = fit_verdict(fit.verdict);
                if matches!(verdict, pb::FitVerdict::NoDisk | pb::FitVerdict::TooLarge) {
                    // The pull has already started; warn and go on, the user
                    // can cancel.
                    let text = if fit.explanation.is_empty() {
                        format!("{name}: {}", verdict_words(fit))
                    } else {
                        fit.explanation.clone()
                    };
                    view.warn(&text);
                }
            }
            view.update(&message)?;
            last = message.progress;
        }
    }
    .await;
    view.clear();
    match end? {
        PullEnd::Detached => {
            let text = detach_message(&name, &provider);
            // Keep stdout pure JSON lines under --json.
            if out.is_json() {
                errln!("{text}");
            } else {
                outln!("{text}")?;
            }
            Ok(())
        }
        PullEnd::Finished(last) => {
            let progress = last.unwrap_or_default();
            match pull_state(progress.state) {
                pb::PullState::Succeeded => {
                    if !out.is_json() {
                        let size = progress.total_bytes.max(progress.completed_bytes);
                        if size > 0 {
                            outln!("pulled {name} ({})", display::bytes(size))?;
                        } else {
                            outln!("pulled {name}")?;
                        }
                    }
                    Ok(())
                }
                pb::PullState::Failed => {
                    let why = if progress.error.is_empty() {
                        "no reason given".to_owned()
                    } else {
                        progress.error
                    };
                    Err(Failure::Other(format!("pull of {name} failed: {why}")))
                }
                pb::PullState::Cancelled => {
                    Err(Failure::Other(format!("pull of {name} was cancelled")))
                }
                // The agent ends streams early only when it shuts down.
                _ => Err(Failure::Other(format!(
                    "the agent stopped reporting on the pull of {name} before it finished; `omnipanel models pulls` shows its state"
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detach_message_names_the_provider_of_a_remote_pull() {
        let local = detach_message("llama3.2:1b", "");
        assert!(
            local.contains("`omnipanel models pull llama3.2:1b`")
                && local.contains("`omnipanel models cancel llama3.2:1b`"),
            "{local}"
        );
        let remote = detach_message("llama3.2:1b", "gpu-box");
        assert!(
            remote.contains("`omnipanel models pull llama3.2:1b --provider gpu-box`")
                && remote.contains("`omnipanel models cancel llama3.2:1b --provider gpu-box`"),
            "{remote}"
        );
    }
}
