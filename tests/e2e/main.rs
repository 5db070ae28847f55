//! The one end-to-end test binary: every test starts the real agent in its
//! own temporary XDG folders and talks to it over its real socket, with the
//! real client library and CLI. One binary (not one per file) keeps link time
//! down.

mod admission;
mod agent_commands;
mod agent_core;
mod audit;
mod cli_commands;
mod cli_pipes;
mod cli_terminal;
mod client;
mod clients_cli;
mod conversations;
mod files;
mod gateway;
mod git;
mod git_safety;
mod git_transports;
mod idle;
mod lifecycle;
mod limits;
mod mcp;
mod ollama;
mod ollama_settings;
mod panel;
mod panel_chat;
mod panel_crash;
mod panel_files;
mod panel_git;
mod providers;
mod providers_cli;
mod python_client;
mod security;
mod system;
mod tray_backend;
