//! `health-probe SOCKET`: one `grpc.health.v1.Health/Check` over a Unix
//! socket, as a separate program so an end-to-end test can run it as
//! another uid (the test process itself must stay root). Prints `SERVING`
//! (exit 0), the refusal's code and message (exit 1), or why it could not
//! connect (exit 2).

use std::{io, path::PathBuf, process::ExitCode};

use hyper_util::rt::TokioIo;
use tonic::transport::Endpoint;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tower::service_fn;

fn main() -> ExitCode {
    let Some(socket) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: health-probe SOCKET");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("health-probe: no runtime: {err}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let channel = Endpoint::from_static("http://localhost")
            .connect_with_connector(service_fn(move |_| {
                let socket = socket.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(&socket).await?;
                    Ok::<_, io::Error>(TokioIo::new(stream))
                }
            }))
            .await;
        let channel = match channel {
            Ok(channel) => channel,
            Err(err) => {
                println!("cannot connect: {err}");
                return ExitCode::from(2);
            }
        };
        match HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
        {
            Ok(response) => {
                println!("{}", response.into_inner().status().as_str_name());
                ExitCode::SUCCESS
            }
            Err(status) => {
                println!("{:?}: {}", status.code(), status.message());
                ExitCode::FAILURE
            }
        }
    })
}
