//! The `web` example: a server-rendered app with forms, on axum, actix-web
//! and hyper (binaries `web-axum`, `web-actix`, `web-hyper`).
//!
//! Sign-in against Argon2id hashes with "remember me", flash messages after
//! a redirect, a three-step form kept in the session, "Your sessions" with
//! "sign out everywhere else", and sign-out. Every form carries the
//! session's CSRF token and every `POST` is checked by the adapter's CSRF
//! support before a page sees it. No JavaScript.
//!
//! The pages are written once, in [`pages`], on the framework-free
//! [`Session`](session_core::Session); each `on_*` module only routes,
//! checks CSRF the framework's way, reads bodies and writes responses.

pub mod on_actix;
pub mod on_axum;
pub mod on_hyper;
pub mod pages;
pub mod users;
pub mod views;
