//! The example app (login, profile, update, logout) on axum, actix-web and
//! hyper, as the repository README specifies it (routes and variables).
//!
//! The route logic lives once, in [`app`], on the framework-free
//! [`Session`](session_core::Session); each framework module only wires
//! routes, extractors and bodies. Run one with
//! `cargo run --release -p session-examples --bin axum` (or `actix`, `hyper`).

pub mod actix_app;
pub mod app;
pub mod axum_app;
pub mod hyper_app;
pub mod serve;
pub mod settings;

pub use settings::Settings;
