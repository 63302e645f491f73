//! The example app (login, profile, update, logout) on axum, actix-web and
//! hyper, as the repository README specifies it (routes and variables).
//!
//! The route logic lives once, in [`app`], on the framework-free
//! [`Session`](session_core::Session); each framework module only wires
//! routes, extractors and bodies. Run one with
//! `cargo run --release -p session-examples --bin axum` (or `actix`, `hyper`).
//!
//! The [`web`] module is a second, server-rendered app with forms (sign-in,
//! flash messages, a three-step form, your sessions, CSRF on every form):
//! `SESSION_SECURE=false cargo run --release -p session-examples --bin web-axum`
//! (or `web-actix`, `web-hyper`).

pub mod actix_app;
pub mod app;
pub mod axum_app;
pub mod hyper_app;
pub mod observability;
pub mod serve;
pub mod settings;
pub mod web;

pub use settings::Settings;
