//! The pages' HTML: askama templates (in `examples/templates/`), checked
//! and compiled with the program, escaping everything they print.

use askama::Template;
use serde::{Deserialize, Serialize};
use session_core::Timestamp;

/// A message shown once, on the next page (Post/Redirect/Get).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    /// `ok` or `error` (a CSS class and the element's id).
    pub kind: String,
    /// The text.
    pub text: String,
}

/// What every page's frame shows.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// The page's title.
    pub title: String,
    /// The signed-in user's display name.
    pub user: Option<String>,
    /// Messages to show once.
    pub flashes: Vec<Flash>,
    /// The CSRF token for this page's forms.
    pub csrf: String,
}

/// `GET /login`.
#[derive(Debug, Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// The frame.
    pub layout: Layout,
    /// The username to fill in again after a failed attempt.
    pub username: String,
}

/// A project made with the three-step form.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Project {
    /// Step 1.
    pub name: String,
    /// Step 2.
    pub language: String,
    /// Step 3.
    pub summary: String,
}

/// `GET /`.
#[derive(Debug, Template)]
#[template(path = "home.html")]
pub struct HomePage {
    /// The frame.
    pub layout: Layout,
    /// Display name.
    pub name: String,
    /// Username.
    pub username: String,
    /// Whether this session has a persistent cookie.
    pub remembered: bool,
    /// Projects made in this session.
    pub projects: Vec<Project>,
}

/// The three-step form's answers so far (kept in the session).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Answers {
    /// Step 1.
    #[serde(default)]
    pub name: String,
    /// Step 2.
    #[serde(default)]
    pub language: String,
    /// Step 3 (kept if the visitor goes back before finishing).
    #[serde(default)]
    pub summary: String,
}

/// `GET /wizard/{step}`.
#[derive(Debug, Template)]
#[template(path = "wizard.html")]
pub struct WizardPage {
    /// The frame.
    pub layout: Layout,
    /// 1, 2 or 3.
    pub step: u8,
    /// The answers so far.
    pub answers: Answers,
    /// The choices of step 2.
    pub languages: &'static [&'static str],
}

/// One row of "Your sessions".
#[derive(Clone, Debug)]
pub struct SessionRow {
    /// When it was created, as text.
    pub created: String,
    /// When it was last active, as text.
    pub last_active: String,
    /// When it ends unless used again, as text.
    pub expires: String,
    /// What names it to "sign out" (never its id).
    pub handle: String,
    /// The browser it was signed in from.
    pub device: String,
    /// Whether it has a persistent cookie.
    pub remembered: bool,
    /// Whether it is the session of this request.
    pub current: bool,
}

/// `GET /sessions`.
#[derive(Debug, Template)]
#[template(path = "sessions.html")]
pub struct SessionsPage {
    /// The frame.
    pub layout: Layout,
    /// The user's username.
    pub username: String,
    /// Newest activity first.
    pub sessions: Vec<SessionRow>,
}

/// `GET /confirm`: "confirm your password" before a sensitive action.
#[derive(Debug, Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    /// The frame.
    pub layout: Layout,
    /// The signed-in user's username.
    pub username: String,
    /// What the password is asked for ("change your password").
    pub purpose: String,
}

/// `GET /password`: "change password".
#[derive(Debug, Template)]
#[template(path = "password.html")]
pub struct PasswordPage {
    /// The frame.
    pub layout: Layout,
    /// The signed-in user's username.
    pub username: String,
    /// The shortest password accepted.
    pub min: usize,
}

/// An error page (404, 500).
#[derive(Debug, Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The frame (its title is the heading).
    pub layout: Layout,
    /// What went wrong.
    pub message: String,
}

/// `2026-11-24 08:31:05` (UTC) for an instant.
pub fn utc(t: Timestamp) -> String {
    let secs = t.unix_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(Timestamp::from_unix_secs(0)), "1970-01-01 00:00:00");
        assert_eq!(
            utc(Timestamp::from_unix_secs(951_782_400)),
            "2000-02-29 00:00:00"
        );
        assert_eq!(
            utc(Timestamp::from_unix_secs(1_795_509_065)),
            "2026-11-24 08:31:05"
        );
    }

    #[test]
    fn pages_escape_what_they_print() {
        let page = LoginPage {
            layout: Layout {
                title: "Sign in".into(),
                csrf: "tok".into(),
                ..Layout::default()
            },
            username: "<script>alert(1)</script>".into(),
        };
        let html = page.render().unwrap();
        assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains(r#"name="csrf_token" value="tok""#));
    }
}
