//! The web app's pages, written once for every framework: each takes the
//! session (and the form body a framework shell read, already past the CSRF
//! check) and returns a [`Page`].

use std::time::Duration;

use askama::Template;
use session_core::csrf::form_value;
use session_core::{DynStore, Session, SessionHandle, SessionManager};

use super::users::{self, User};
use super::views::{
    Answers, ConfirmPage, ErrorPage, Flash, HomePage, Layout, LoginPage, PasswordPage, Project,
    SessionRow, SessionsPage, WizardPage, utc,
};

/// The engine the pages use (for "Your sessions").
pub type Manager = SessionManager<DynStore>;

/// How recent a sign-in "sign out everywhere else" and "change password"
/// want, unless `WEB_REAUTH_SECS` says otherwise.
pub const REAUTH: Duration = Duration::from_secs(300);

/// What the pages share: the engine (its store and its clock) and how
/// recent a sign-in the sensitive pages want.
#[derive(Clone, Debug)]
pub struct WebApp {
    /// The engine.
    pub manager: Manager,
    /// A sign-in older than this is asked for the password again before a
    /// sensitive action.
    pub reauth: Duration,
}

impl WebApp {
    /// The app on `manager`, with the default re-authentication window.
    pub fn new(manager: Manager) -> Self {
        Self {
            manager,
            reauth: REAUTH,
        }
    }

    /// Whether this session's user signed in (or confirmed the password)
    /// recently enough for a sensitive action, by the engine's clock.
    fn fresh_login(&self, session: &Session) -> bool {
        session.authenticated_within(self.reauth, self.manager.now())
    }
}

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
/// Where "confirm your password" goes back to (one of [`SENSITIVE`]).
const REAUTH_NEXT: &str = "reauth_next";

/// The pages that want a recent sign-in, and what each does, for "confirm
/// your password to ...".
const SENSITIVE: [(&str, &str); 2] = [
    ("/sessions", "sign out your other sessions"),
    ("/password", "change your password"),
];

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
pub async fn sessions(app: &WebApp, session: &Session) -> Page {
    let Some(user) = user_of(session) else {
        return Page::Redirect("/login");
    };
    let listed = match app.manager.user_sessions(session).await {
        Ok(listed) => listed,
        Err(e) => return store_failure(&app.manager, session, &e),
    };
    let rows: Vec<SessionRow> = listed
        .into_iter()
        .map(|info| SessionRow {
            created: utc(info.created_at),
            last_active: utc(info.last_activity),
            expires: utc(info.expires_at),
            handle: info.handle.to_string(),
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

/// `POST /sessions/end`: "sign out" one other session, named by its
/// handle (never its id). A handle that names none of this user's live
/// sessions gets a 404 page, as one that never existed does.
pub async fn end_session(app: &WebApp, session: &Session, form: &[u8]) -> Page {
    if user_of(session).is_none() {
        return Page::Redirect("/login");
    }
    let handle = form_value(form, "handle").and_then(|h| SessionHandle::parse(&h));
    let ended = match handle {
        Some(handle) => app.manager.end_session_by_handle(session, &handle).await,
        None => Ok(false),
    };
    match ended {
        // The handle was this session's own: it is signed out.
        Ok(true) if user_of(session).is_none() => {
            flash(session, "ok", "You are signed out.");
            Page::Redirect("/login")
        }
        Ok(true) => {
            flash(session, "ok", "Signed out that session.");
            Page::Redirect("/sessions")
        }
        Ok(false) => error_page(
            session,
            404,
            "No such session",
            "That is not one of your sessions, or it has ended already.",
        ),
        Err(e) => store_failure(&app.manager, session, &e),
    }
}

/// `POST /sessions/end-others`: "sign out everywhere else", after a recent
/// sign-in only.
pub async fn end_others(app: &WebApp, session: &Session) -> Page {
    if user_of(session).is_none() {
        return Page::Redirect("/login");
    }
    if !app.fresh_login(session) {
        return ask_password(session, "/sessions");
    }
    match app.manager.end_other_sessions(session).await {
        Ok(n) => {
            let s = if n == 1 { "" } else { "s" };
            flash(session, "ok", format!("Signed out {n} other session{s}."));
            Page::Redirect("/sessions")
        }
        Err(e) => store_failure(&app.manager, session, &e),
    }
}

/// Sends a sign-in too old for a sensitive action to "confirm your
/// password", which comes back to `back` (one of [`SENSITIVE`]).
fn ask_password(session: &Session, back: &'static str) -> Page {
    let _ = session.insert(REAUTH_NEXT, back);
    Page::Redirect("/confirm")
}

/// Where "confirm your password" goes back to, and what for.
fn reauth_target(session: &Session) -> Option<(&'static str, &'static str)> {
    let next: String = session.get(REAUTH_NEXT).ok().flatten()?;
    SENSITIVE.into_iter().find(|(path, _)| *path == next)
}

/// `GET /confirm`: "confirm your password".
pub fn confirm_form(session: &Session) -> Page {
    let Some(user) = user_of(session) else {
        return Page::Redirect("/login");
    };
    let purpose = reauth_target(session).map_or("continue", |(_, what)| what);
    let page = ConfirmPage {
        layout: layout(session, "Confirm your password"),
        username: user.username.to_owned(),
        purpose: purpose.to_owned(),
    };
    Page::render(200, &page)
}

/// `POST /confirm`: checks the password as sign-in does. Right: the sign-in
/// counts as fresh (`set_user` with the same user records the time) and the
/// session gets a new id and CSRF token, as on sign-in; then back to the
/// page that asked, with a flash. Wrong: the form again, with an error.
pub async fn confirm(session: &Session, form: &[u8]) -> Page {
    let Some(user) = user_of(session) else {
        return Page::Redirect("/login");
    };
    let password = form_value(form, "password").unwrap_or_default();
    let username = user.username;
    let confirmed = tokio::task::spawn_blocking(move || users::authenticate(username, &password))
        .await
        .ok()
        .flatten()
        .is_some();
    if !confirmed {
        flash(session, "error", "Wrong password.");
        return Page::Redirect("/confirm");
    }
    session.set_user(user.username);
    session.renew();
    let back = reauth_target(session).map_or("/", |(path, _)| path);
    session.remove(REAUTH_NEXT);
    flash(session, "ok", "Password confirmed. Please go on.");
    Page::Redirect(back)
}

/// `GET /password`: "change password", after a recent sign-in only.
pub fn password_form(app: &WebApp, session: &Session) -> Page {
    let Some(user) = user_of(session) else {
        return Page::Redirect("/login");
    };
    if !app.fresh_login(session) {
        return ask_password(session, "/password");
    }
    let page = PasswordPage {
        layout: layout(session, "Change password"),
        username: user.username.to_owned(),
        min: users::MIN_PASSWORD,
    };
    Page::render(200, &page)
}

/// `POST /password`: a new password (twice), after a recent sign-in only.
/// The user's other sessions are signed out, and this one gets a new id.
pub async fn change_password(app: &WebApp, session: &Session, form: &[u8]) -> Page {
    let Some(user) = user_of(session) else {
        return Page::Redirect("/login");
    };
    if !app.fresh_login(session) {
        return ask_password(session, "/password");
    }
    let new = form_value(form, "new_password").unwrap_or_default();
    let again = form_value(form, "repeat_password").unwrap_or_default();
    if new.chars().count() < users::MIN_PASSWORD || new.len() > 1024 {
        let min = users::MIN_PASSWORD;
        flash(
            session,
            "error",
            format!("A password has {min} to 1024 characters."),
        );
        return Page::Redirect("/password");
    }
    if new != again {
        flash(session, "error", "The two passwords differ.");
        return Page::Redirect("/password");
    }
    let changed = tokio::task::spawn_blocking(move || users::set_password(user, &new))
        .await
        .unwrap_or(false);
    if !changed {
        flash(session, "error", "The password could not be changed.");
        return Page::Redirect("/password");
    }
    session.renew();
    let ended = match app.manager.end_other_sessions(session).await {
        Ok(n) => n,
        Err(e) => return store_failure(&app.manager, session, &e),
    };
    let s = if ended == 1 { "" } else { "s" };
    flash(
        session,
        "ok",
        format!("Your password is changed. Signed out {ended} other session{s}."),
    );
    Page::Redirect("/")
}

fn store_failure(manager: &Manager, session: &Session, error: &session_core::Error) -> Page {
    let status = manager.failure_status(error);
    let page = ErrorPage {
        layout: bare_layout(session, "Try again later"),
        message: "The session store is not answering. Please try again in a moment.".into(),
    };
    Page::render(status, &page)
}

/// A refusal or error, on a styled page.
fn error_page(session: &Session, status: u16, title: &str, message: &str) -> Page {
    let page = ErrorPage {
        layout: bare_layout(session, title),
        message: message.into(),
    };
    Page::render(status, &page)
}

/// Any other path.
pub fn not_found(session: &Session) -> Page {
    error_page(session, 404, "Not found", "There is no page here.")
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

    #[tokio::test]
    async fn a_stale_sign_in_confirms_the_password_before_a_sensitive_action() {
        use session_core::{ManualClock, MemoryStore, SessionConfig, Timestamp};
        let clock = ManualClock::new(Timestamp::default());
        let store = DynStore::new(MemoryStore::new());
        let manager =
            SessionManager::with_clock(store, SessionConfig::default(), clock.clone()).unwrap();
        let app = WebApp::new(manager);
        let session = Session::detached();
        session.set_user("grace");
        assert!(matches!(
            password_form(&app, &session),
            Page::Html { status: 200, .. }
        ));
        clock.advance(REAUTH + Duration::from_secs(1));
        assert_eq!(password_form(&app, &session), Page::Redirect("/confirm"));
        assert_eq!(
            change_password(
                &app,
                &session,
                b"new_password=abcdefgh&repeat_password=abcdefgh"
            )
            .await,
            Page::Redirect("/confirm"),
            "the post is refused too"
        );
        let Page::Html { status: 200, body } = confirm_form(&session) else {
            panic!("the confirm form")
        };
        assert!(body.contains("to change your password"));
        assert_eq!(
            confirm(&session, b"password=lovelace").await,
            Page::Redirect("/confirm"),
            "another user's password"
        );
        // Back where it was asked, still Grace (re-stamping the time and
        // the new id are the engine's, seen in the browser test).
        assert_eq!(
            confirm(&session, b"password=hopper").await,
            Page::Redirect("/password")
        );
        assert_eq!(session.user().as_deref(), Some("grace"));
        assert!(!session.contains_key(REAUTH_NEXT));
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
