//! The `web` example: a server-rendered app with forms, on axum, actix-web
//! and hyper (binaries `web-axum`, `web-actix`, `web-hyper`).
//!
//! Sign-in against Argon2id hashes with "remember me", flash messages after
//! a redirect, a three-step form kept in the session, "Your sessions" (each
//! device, "sign out" one by its handle, or "sign out everywhere else"),
//! "change password", and sign-out. "Sign out everywhere else" and "change
//! password" want a sign-in younger than five minutes (`WEB_REAUTH_SECS`,
//! read by the `web-*` binaries only); an older one is asked for the
//! password again first. Every form carries the
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

use std::time::Duration;

use pages::{Manager, REAUTH, WebApp};

/// The web app on `manager`, with the re-authentication window from
/// `WEB_REAUTH_SECS` (whole seconds, at least 1; default 300). An invalid
/// value stops the program with a message that names the variable.
pub fn app_from_env(manager: Manager) -> WebApp {
    const VAR: &str = "WEB_REAUTH_SECS";
    let reauth = match std::env::var(VAR) {
        Err(std::env::VarError::NotPresent) => REAUTH,
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Duration::from_secs(secs),
            _ => crate::serve::exit_with(&format!(
                "{VAR}: expected whole seconds, at least 1, not {text:?}"
            )),
        },
        Err(_) => crate::serve::exit_with(&format!("{VAR}: not UTF-8")),
    };
    WebApp { manager, reauth }
}
