//! Printing a log source's last lines and following it, for `omnipanel
//! logs` and `omnipanel ollama logs` alike.

use omnipanel_client::Client;
use omnipanel_proto::v1::TailLogsRequest;

use crate::{
    Failure,
    output::{Output, emit},
};

/// Print the last `lines` lines of a log source (`omnipanel logs`,
/// `omnipanel ollama logs`), then follow it when asked.
pub async fn logs(source: String, lines: u32, follow: bool, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut stream = client
        .call_stream(client.agent().tail_logs(TailLogsRequest {
            source,
            lines,
            follow,
        }))
        .await?;
    while let Some(batch) = stream.message().await? {
        if out.is_json() {
            out.json(&batch)?;
        } else {
            let mut text = batch.lines.join("\n");
            if !text.is_empty() {
                text.push('\n');
                emit(&text)?;
            }
        }
    }
    Ok(())
}
