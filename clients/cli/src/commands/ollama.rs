//! `omnipanel ollama ...`: supervise the local Ollama server (status,
//! start, stop, restart, its log) through the agent's ModelService.

use clap::Subcommand;
use omnipanel_client::{Client, display};
use omnipanel_proto::v1::{
    self as pb, GetServerStatusRequest, RestartServerRequest, StartServerRequest, StopServerRequest,
};

use crate::{
    Failure, log_tail,
    output::{Output, errln, outln},
};

/// `omnipanel ollama ...`
#[derive(Debug, Subcommand)]
pub enum OllamaCommand {
    /// Show the local Ollama server's state, version, process and address.
    Status,
    /// Start the local server (nothing happens when it already runs).
    Start,
    /// Stop the local server if OmniPanel started it.
    Stop,
    /// Stop (if running) and start the local server.
    Restart,
    /// Show the Ollama server's log.
    Logs {
        /// Keep printing new lines.
        #[arg(long, short)]
        follow: bool,
        /// How many of the last lines to print.
        #[arg(short = 'n', long = "lines", default_value_t = 100)]
        lines: u32,
    },
}

/// `omnipanel ollama ...`
pub async fn ollama(command: OllamaCommand, out: Output) -> Result<(), Failure> {
    let control = match command {
        OllamaCommand::Logs { follow, lines } => {
            return log_tail::logs("ollama".to_owned(), lines, follow, out).await;
        }
        OllamaCommand::Status => None,
        OllamaCommand::Start => Some(Control::Start),
        OllamaCommand::Stop => Some(Control::Stop),
        OllamaCommand::Restart => Some(Control::Restart),
    };
    let client = Client::connect_from_env().await?;
    let mut models = client.models();
    let Some(control) = control else {
        let response = client
            .call(models.get_server_status(GetServerStatusRequest {}))
            .await?;
        if out.is_json() {
            return out.json(&response);
        }
        print_server_status(&response.status.unwrap_or_default())?;
        return Ok(());
    };
    let status = match control {
        Control::Start => {
            let response = client
                .call(models.start_server(StartServerRequest {}))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            response.status
        }
        Control::Restart => {
            let response = client
                .call(models.restart_server(RestartServerRequest {}))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            response.status
        }
        Control::Stop => {
            let response = client
                .call(models.stop_server(StopServerRequest {}))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            response.status
        }
    }
    .unwrap_or_default();
    let wants_running = control != Control::Stop;
    outln!("{}", display::server_status_line(&status))?;
    let state = server_state(status.state);
    if wants_running && !matches!(state, pb::ServerState::Running | pb::ServerState::External) {
        // The start "settled" somewhere other than running (port taken,
        // crash on start, ...): a script chaining `ollama start && ...`
        // must see that as a failure.
        let why = if status.last_error.is_empty() {
            status.reason
        } else {
            status.last_error
        };
        return Err(Failure::Other(format!(
            "Ollama did not start: {}",
            display::one_line(&why)
        )));
    }
    if !wants_running && state == pb::ServerState::External {
        errln!(
            "omnipanel: this server was started outside OmniPanel, so OmniPanel does not stop it"
        );
    }
    Ok(())
}

/// What `omnipanel ollama start|stop|restart` asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Control {
    Start,
    Stop,
    Restart,
}

fn server_state(state: i32) -> pb::ServerState {
    pb::ServerState::try_from(state).unwrap_or(pb::ServerState::Unspecified)
}

fn print_server_status(status: &pb::ServerStatus) -> Result<(), Failure> {
    outln!("{}", display::server_status_line(status))?;
    outln!(
        "  state          {} ({})",
        display::server_state_name(status.state),
        display::server_state_meaning(status.state)
    )?;
    outln!("  version        {}", display::or_dash(&status.version))?;
    let pid = if status.pid == 0 {
        "-".to_owned()
    } else {
        status.pid.to_string()
    };
    outln!("  pid            {pid}")?;
    outln!("  address        {}", display::or_dash(&status.address))?;
    let uptime = if status.uptime_ms > 0 {
        display::duration(u64::try_from(status.uptime_ms / 1000).unwrap_or_default())
    } else {
        "-".to_owned()
    };
    outln!("  uptime         {uptime}")?;
    outln!("  restarts       {}", status.restart_count)?;
    outln!("  last error     {}", display::one_line(&status.last_error))?;
    outln!("  reason         {}", display::one_line(&status.reason))?;
    outln!("  binary         {}", display::or_dash(&status.binary_path))?;
    let default = if status.default_model.is_empty() {
        "(none)"
    } else {
        &status.default_model
    };
    outln!("  default model  {default}")?;
    if server_state(status.state) == pb::ServerState::Backoff && status.next_attempt_unix_ms > 0 {
        outln!(
            "  next attempt   {}",
            display::relative_time(status.next_attempt_unix_ms)
        )?;
    }
    Ok(())
}
