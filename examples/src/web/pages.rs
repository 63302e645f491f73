//! The web app's pages, written once for every framework: each takes the
//! session (and the form body a framework shell read, already past the CSRF
//! check) and returns a [`Page`].

use std::time::Duration;

use askama::Template;
use session_core::csrf::form_value;
use session_core::{DynStore, Session, SessionManager};

use super::users::{self, User};
use super::views::{
    Answers, ErrorPage, Flash, HomePage, Layout, LoginPage, Project, SessionRow, SessionsPage,
    WizardPage, utc,
};

/// The engine the pages use (for "Your sessions").
pub type Manager = SessionManager<DynStore>;

/// The largest form body accepted.
pub const FORM_LIMIT: usize = 16 * 1024;

/// A "remember me" session's idle timeout.
pub const REMEMBER_IDLE: Duration = Duration::from_secs(14 * 24 * 3600);
/// A "remember me" session's absolute lifetime.
pub const REMEMBER_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Session keys.
const FLASH: &str = "notice";
const LAST_USERNAME: &str = "username";
const DEVICE: &str = "device";
const WIZARD: &str = "wizard";
const PROJECTS: &str = "projects";

/// The choices of the three-step form's second step.
const LANGUAGES: &[&str] = &["Rust", "Go", "Python", "TypeScript", "Other"];

/// Headers every page carries: no scripts, no framing, forms only to this
/// origin, nothing cached (pages show session data).
pub const HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
];

/// What a page answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Page {
    /// An HTML page with this status.
    Html {
        /// HTTP status.
        status: u16,
        /// The document.
        body: String,
    },
    /// `303 See Other` to this path (Post/Redirect/Get).
    Redirect(&'static str),
}

impl Page {
    fn render(status: u16, page: &impl Template) -> Self {
        match page.render() {
            Ok(body) => Self::Html { status, body },
            Err(_) => Self::Html {
                status: 500,
                body: "<!doctype html><title>500</title><h1>Internal error</h1>".into(),
            },
        }
    }
}

/// The signed-in user of this session.
fn user_of(session: &Session) -> Option<&'static User> {
    session.user().and_then(|name| users::find(&name))
}

fn layout(session: &Session, title: &str) -> Layout {
    let flashes = session
        .take_flash::<Flash>(FLASH)
        .ok()
        .flatten()
        .into_iter()
        .collect();
    Layout {
        title: title.to_owned(),
        user: user_of(session).map(|u| u.name.to_owned()),
        flashes,
        // Fails only if the session refuses the write; the form then fails
        // its check, and says so.
        csrf: session_core::csrf::token(session).unwrap_or_default(),
    }
}

/// The frame of an error page: no flash is taken (a browser's stray
/// request, such as `/favicon.ico`, must not eat one) and no token is made
/// for a visitor who is not signed in (no session for stray requests).
fn bare_layout(session: &Session, title: &str) -> Layout {
    let user = user_of(session);
    Layout {
        title: title.to_owned(),
        user: user.map(|u| u.name.to_owned()),
        flashes: Vec::new(),
        csrf: match user {
            Some(_) => session_core::csrf::token(session).unwrap_or_default(),
            None => String::new(),
        },
    }
}

/// A short name for a browser from its `User-Agent`: "Chrome 156 on Linux".
fn device(user_agent: &str) -> String {
    const BROWSERS: [(&str, &str); 6] = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Version/", "Safari"),
        ("curl/", "curl"),
    ];
    const SYSTEMS: [(&str, &str); 6] = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    let browser = BROWSERS.iter().find_map(|(marker, name)| {
        let at = user_agent.find(marker)? + marker.len();
        let major: String = user_agent[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(format!("{name} {major}").trim_end().to_owned())
    });
    let system = SYSTEMS
        .iter()
        .find(|(marker, _)| user_agent.contains(marker))
        .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b,
        _ => "Unknown browser".to_owned(),
    }
}

fn flash(session: &Session, kind: &str, text: impl Into<String>) {
    let flash = Flash {
        kind: kind.to_owned(),
        text: text.into(),
    };
    let _ = session.flash(FLASH, &flash);
}

/// `GET /`: the signed-in user's start page.
pub fn home(session: &Session) -> Page {
    let Some(user) = user_of(session) else {
        return Page::Redirect("/login");
    };
    let page = HomePage {
        layout: layout(session, "Home"),
        name: user.name.to_owned(),
        username: user.username.to_owned(),
        remembered: session.expiry().persistent == Some(true),
        projects: session.get(PROJECTS).ok().flatten().unwrap_or_default(),
    };
    Page::render(200, &page)
}

/// `GET /login`: the form. It carries the CSRF token of the visitor's
/// (new) session, so that the login itself is checked.
pub fn login_form(session: &Session) -> Page {
    if user_of(session).is_some() {
        return Page::Redirect("/");
    }
    let username = session
        .take(LAST_USERNAME)
        .ok()
        .flatten()
        .unwrap_or_default();
    let page = LoginPage {
        layout: layout(session, "Sign in"),
        username,
    };
    Page::render(200, &page)
}

/// `POST /login`: checks the password (off the async threads). Right: a
/// fresh session (new id, new CSRF token) for the user, persistent with a
/// longer idle timeout if "remember me" was ticked, and a welcome flash.
/// Wrong: the form again, with an error flash and the username kept.
pub async fn login(session: &Session, form: &[u8], user_agent: Option<&str>) -> Page {
    let username = form_value(form, "username").unwrap_or_default();
    let password = form_value(form, "password").unwrap_or_default();
    let remember = form_value(form, "remember").is_some_and(|v| v == "on");
    let name = username.clone();
    let user = tokio::task::spawn_blocking(move || users::authenticate(&name, &password))
        .await
        .ok()
        .flatten();
    let Some(user) = user else {
        flash(session, "error", "Wrong username or password.");
        let _ = session.insert(
            LAST_USERNAME,
            &username.chars().take(64).collect::<String>(),
        );
        return Page::Redirect("/login");
    };
    // Nothing of the visitor's earlier session carries over to the user's.
    session.clear();
    session.set_user(user.username);
    session.set_persistent(remember.then_some(true));
    session.set_idle_timeout(remember.then_some(REMEMBER_IDLE));
    session.set_lifetime(remember.then_some(REMEMBER_LIFETIME));
    let _ = session.insert(DEVICE, &device(user_agent.unwrap_or_default()));
    let welcome = if remember {
        format!(
            "Welcome, {}! This browser will keep you signed in for 14 days.",
            user.name
        )
    } else {
        format!("Welcome, {}! You are signed in.", user.name)
    };
    flash(session, "ok", welcome);
    Page::Redirect("/")
}

/// `POST /logout`: ends the session on the server, and says so once on the
/// next page.
pub fn logout(session: &Session) -> Page {
    let was_signed_in = user_of(session).is_some();
    session.destroy();
    if was_signed_in {
        flash(session, "ok", "You are signed out.");
    }
    Page::Redirect("/login")
}

fn answers(session: &Session) -> Answers {
    session.get(WIZARD).ok().flatten().unwrap_or_default()
}

/// The first step whose answer is missing, if it comes before `step`.
fn missing_before(answers: &Answers, step: u8) -> Option<&'static str> {
    if step > 1 && answers.name.is_empty() {
        Some("/wizard/1")
    } else if step > 2 && answers.language.is_empty() {
        Some("/wizard/2")
    } else {
        None
    }
}

/// `GET /wizard/{step}`: a step of the three-step form, filled in with the
/// answers kept in the session (so back, forward and reload lose nothing).
pub fn wizard_form(session: &Session, step: u8) -> Page {
    if user_of(session).is_none() {
        return Page::Redirect("/login");
    }
    if !(1..=3).contains(&step) {
        return not_found(session);
    }
    let answers = answers(session);
    if let Some(first) = missing_before(&answers, step) {
        return Page::Redirect(first);
    }
    let page = WizardPage {
        layout: layout(session, "New project"),
        step,
        answers,
        languages: LANGUAGES,
    };
    Page::render(200, &page)
}

/// `POST /wizard/{step}`: keeps the step's answer in the session and goes
/// to the next step; the last step makes the project and forgets the
/// answers.
pub fn wizard_submit(session: &Session, step: u8, form: &[u8]) -> Page {
    const STEPS: [&str; 3] = ["/wizard/1", "/wizard/2", "/wizard/3"];
    if user_of(session).is_none() {
        return Page::Redirect("/login");
    }
    if !(1..=3).contains(&step) {
        return not_found(session);
    }
    let mut answers = answers(session);
    if let Some(first) = missing_before(&answers, step) {
        return Page::Redirect(first);
    }
    let field = |name: &str, max: usize| -> String {
        let value = form_value(form, name).unwrap_or_default();
        value.trim().chars().take(max).collect()
    };
    let here = STEPS[usize::from(step - 1)];
    match step {
        1 => answers.name = field("name", 80),
        2 => {
            let language = field("language", 20);
            answers.language = if LANGUAGES.contains(&language.as_str()) {
                language
            } else {
                String::new()
            };
        }
        _ => answers.summary = field("summary", 200),
    }
    let answered = match step {
        1 => &answers.name,
        2 => &answers.language,
        _ => &answers.summary,
    };
    if answered.is_empty() {
        flash(session, "error", "Please answer this step.");
        return Page::Redirect(here);
    }
    if step < 3 {
        let _ = session.insert(WIZARD, &answers);
        return Page::Redirect(STEPS[usize::from(step)]);
    }
    let mut projects: Vec<Project> = session.get(PROJECTS).ok().flatten().unwrap_or_default();
    let project = Project {
        name: answers.name,
        language: answers.language,
        summary: answers.summary,
    };
    flash(
        session,
        "ok",
        format!("Project “{}” created.", project.name),
    );
    projects.push(project);
    let _ = session.insert(PROJECTS, &projects);
    session.remove(WIZARD);
    Page::Redirect("/")
}

/// `GET /sessions`: the user's live sessions, newest activity first, this
/// one marked. Ids are never shown: they are credentials.
pub async fn sessions(manager: &Manager, session: &Session) -> Page {
    let Some(user) = user_of(session) else {
        return Page::Redirect("/login");
    };
    let listed = match manager.user_sessions(session).await {
        Ok(listed) => listed,
        Err(e) => return store_failure(manager, session, &e),
    };
    let rows: Vec<SessionRow> = listed
        .into_iter()
        .map(|info| SessionRow {
            created: utc(info.created_at),
            last_active: utc(info.last_activity),
            device: info
                .data
                .get(DEVICE)
                .and_then(|json| serde_json::from_str::<String>(json).ok())
                .unwrap_or_else(|| "unknown".into()),
            remembered: info.persistent,
            current: info.current,
        })
        .collect();
    let page = SessionsPage {
        layout: layout(session, "Your sessions"),
        username: user.username.to_owned(),
        sessions: rows,
    };
    Page::render(200, &page)
}

/// `POST /sessions/end-others`: "sign out everywhere else".
pub async fn end_others(manager: &Manager, session: &Session) -> Page {
    if user_of(session).is_none() {
        return Page::Redirect("/login");
    }
    match manager.end_other_sessions(session).await {
        Ok(n) => {
            let s = if n == 1 { "" } else { "s" };
            flash(session, "ok", format!("Signed out {n} other session{s}."));
            Page::Redirect("/sessions")
        }
        Err(e) => store_failure(manager, session, &e),
    }
}

fn store_failure(manager: &Manager, session: &Session, error: &session_core::Error) -> Page {
    let status = manager.failure_status(error);
    let page = ErrorPage {
        layout: bare_layout(session, "Try again later"),
        message: "The session store is not answering. Please try again in a moment.".into(),
    };
    Page::render(status, &page)
}

/// Any other path.
pub fn not_found(session: &Session) -> Page {
    let page = ErrorPage {
        layout: bare_layout(session, "Not found"),
        message: "There is no page here.".into(),
    };
    Page::render(404, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_shortly() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      HeadlessChrome/156.0.0.0 Safari/537.36";
        assert_eq!(device(chrome), "Headless Chrome 156 on Linux");
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0";
        assert_eq!(device(firefox), "Firefox 140 on Windows");
        assert_eq!(device("curl/8.1"), "curl 8");
        assert_eq!(device(""), "Unknown browser");
    }

    #[test]
    fn the_three_step_form_keeps_its_answers_until_the_last_step() {
        let session = Session::detached();
        assert_eq!(wizard_form(&session, 1), Page::Redirect("/login"));
        session.set_user("ada");
        // Steps cannot be skipped.
        assert_eq!(wizard_form(&session, 3), Page::Redirect("/wizard/1"));
        assert_eq!(
            wizard_submit(&session, 1, b"name=+Apollo+"),
            Page::Redirect("/wizard/2")
        );
        assert_eq!(wizard_form(&session, 3), Page::Redirect("/wizard/2"));
        // A choice that is not offered is no answer.
        assert_eq!(
            wizard_submit(&session, 2, b"language=COBOL"),
            Page::Redirect("/wizard/2")
        );
        assert_eq!(
            wizard_submit(&session, 2, b"language=Rust"),
            Page::Redirect("/wizard/3")
        );
        let Page::Html { status: 200, body } = wizard_form(&session, 1) else {
            panic!("step 1 again")
        };
        assert!(
            body.contains(r#"value="Apollo""#),
            "going back keeps the answer"
        );
        assert_eq!(answers(&session).language, "Rust");
        assert_eq!(
            wizard_submit(&session, 3, b"summary=To+the+moon"),
            Page::Redirect("/")
        );
        assert!(!session.contains_key(WIZARD), "the answers are let go");
        let projects: Vec<Project> = session.get(PROJECTS).unwrap().unwrap();
        assert_eq!(projects[0].summary, "To the moon");
        assert!(matches!(
            wizard_form(&session, 4),
            Page::Html { status: 404, .. }
        ));
    }

    #[test]
    fn a_stray_request_makes_no_session_and_eats_no_flash() {
        let visitor = Session::detached();
        let Page::Html { status: 404, .. } = not_found(&visitor) else {
            panic!("expected a 404 page")
        };
        assert!(visitor.is_empty(), "no token for a stray request");
        flash(&visitor, "ok", "hello");
        not_found(&visitor);
        assert!(visitor.take_flash::<Flash>(FLASH).unwrap().is_some());
    }
}
