//! wxlogin: WeChat Mini Program phone-number quick login as a service.
//!
//! The binary (`main.rs`) only parses the command line; everything lives here so tests can start the service
//! in process: [`app::start`] turns [`config::Settings`] into a listening server.

pub mod access;
pub mod admin;
pub mod api;
pub mod app;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod logins;
pub mod phone_crypto;
mod private_file;
pub mod quota;
pub mod ratelimit;
pub mod sandbox;
mod sandbox_ui;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tokens;
