//! The web example in a real browser: headless Chromium driven over
//! WebDriver, on all three frameworks (memory store) and once more on
//! Redis, with one chromedriver and two browser profiles shared by the
//! whole run.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test
//! is skipped with a line saying why (a failure under
//! `SESSION_TEST_STRICT=1`). Screenshots of every page go to
//! `target/tmp/browser-screenshots/<framework>/`, printed at the start.

mod harness;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::{App, Attacker, Browser, Driver, Forgery};
use session_redis::testing::LocalRedis;

/// The routes a page on another site forges posts to, with the fields a
/// real form would send (and a made-up token), in every encoding a
/// cross-site form can use.
const FORGERIES: [Forgery; 9] = [
    // Login CSRF: the victim would end up signed in as the attacker.
    Forgery {
        route: "/login",
        enctype: "text/plain",
        fields: &[("username", "grace"), ("password", "hopper")],
    },
    Forgery {
        route: "/login",
        enctype: "application/x-www-form-urlencoded",
        fields: &[
            ("username", "grace"),
            ("password", "hopper"),
            ("csrf_token", "forged"),
        ],
    },
    Forgery {
        route: "/logout",
        enctype: "application/x-www-form-urlencoded",
        fields: &[("csrf_token", "forged")],
    },
    Forgery {
        route: "/wizard/1",
        enctype: "multipart/form-data",
        fields: &[("name", "Forged"), ("csrf_token", "forged")],
    },
    Forgery {
        route: "/wizard/2",
        enctype: "application/x-www-form-urlencoded",
        fields: &[("language", "Go")],
    },
    Forgery {
        route: "/wizard/3",
        enctype: "application/x-www-form-urlencoded",
        fields: &[("summary", "forged"), ("csrf_token", "forged")],
    },
    Forgery {
        route: "/sessions/end-others",
        enctype: "application/x-www-form-urlencoded",
        fields: &[("csrf_token", "forged")],
    },
    Forgery {
        route: "/sessions/end",
        enctype: "application/x-www-form-urlencoded",
        fields: &[
            ("handle", "AAAAAAAAAAAAAAAAAAAAAA"),
            ("csrf_token", "forged"),
        ],
    },
    Forgery {
        route: "/confirm",
        enctype: "text/plain",
        fields: &[("password", "lovelace")],
    },
];

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The apps' re-authentication window (`WEB_REAUTH_SECS`), short so that
/// the test can outwait it.
const REAUTH_SECS: u64 = 3;

/// The number of sessions "Your sessions" lists.
async fn session_rows(b: &Browser) -> usize {
    let rows = b
        .client
        .find_all(fantoccini::Locator::Css("#sessions tr"))
        .await
        .unwrap();
    rows.len() - 1 // the header
}

/// Signs in on the login page that is open.
async fn sign_in(b: &Browser, username: &str, password: &str, remember: bool) {
    b.fill("username", username).await;
    b.fill("password", password).await;
    if remember {
        b.find("#remember").await.click().await.unwrap();
    }
    b.click("sign-in").await;
}

/// Every flow of issues 13 and 21 on one framework. `a` and `b` are two browser
/// profiles (two devices of one user).
async fn flows(framework: &str, bin: &str, redis: Option<String>, a: &Browser, b: &Browser) {
    let shots = harness::screenshot_dir(framework);
    let reauth = REAUTH_SECS.to_string();
    let app = App::start(bin, redis.as_deref(), &[("WEB_REAUTH_SECS", &reauth)]).await;
    for browser in [a, b] {
        browser.open(&app.url("/login")).await;
        browser.clear_cookies().await;
    }

    // A wrong password, then the right one (a plain sign-in).
    a.open(&app.url("/")).await;
    assert_eq!(
        a.path().await,
        "/login",
        "{framework}: / sends strangers to the form"
    );
    a.shot(&shots, "01-login").await;
    sign_in(a, "ada", "wrong password", false).await;
    assert_eq!(a.path().await, "/login");
    assert_eq!(a.text("#flash-error").await, "Wrong username or password.");
    assert_eq!(a.value("username").await, "ada", "the username is kept");
    a.shot(&shots, "02-login-wrong-password").await;
    sign_in(a, "ada", "lovelace", false).await;
    let signed_in = Instant::now();
    assert_eq!(a.path().await, "/", "{framework}: signed in");
    assert!(
        a.text("#flash-ok")
            .await
            .starts_with("Welcome, Ada Lovelace!")
    );
    a.shot(&shots, "03-home-welcome").await;
    let (_, expiry) = a.session_cookie().await.expect("a session cookie");
    assert_eq!(
        expiry, None,
        "{framework}: a plain sign-in gives a session cookie"
    );

    // The flash is shown once.
    a.client.refresh().await.unwrap();
    a.settle().await;
    assert!(
        !a.has("#flash-ok").await,
        "{framework}: the flash is gone on reload"
    );
    assert!(a.body().await.contains("Hello, Ada Lovelace"));

    // The three-step form across reloads, back and forward.
    a.open(&app.url("/wizard/1")).await;
    a.fill("name", "Apollo").await;
    a.shot(&shots, "04-wizard-step-1").await;
    a.click("next").await;
    assert_eq!(a.path().await, "/wizard/2");
    a.client.refresh().await.unwrap();
    a.settle().await;
    assert_eq!(a.path().await, "/wizard/2", "a reload stays on the step");
    a.client.back().await.unwrap();
    a.settle().await;
    assert_eq!(a.path().await, "/wizard/1");
    assert_eq!(
        a.value("name").await,
        "Apollo",
        "{framework}: back keeps the answer"
    );
    a.client.forward().await.unwrap();
    a.settle().await;
    assert_eq!(a.path().await, "/wizard/2");
    a.find("#language")
        .await
        .select_by_value("Rust")
        .await
        .unwrap();
    a.shot(&shots, "05-wizard-step-2").await;
    a.click("next").await;
    assert_eq!(
        a.path().await,
        "/wizard/3",
        "{framework}: {}",
        a.body().await
    );
    a.fill("summary", "To the moon").await;
    a.client.refresh().await.unwrap();
    a.settle().await;
    assert_eq!(
        a.text("#answer-name").await,
        "Apollo",
        "{framework}: reload keeps step 1"
    );
    assert_eq!(
        a.text("#answer-language").await,
        "Rust",
        "reload keeps step 2"
    );
    a.fill("summary", "To the moon").await;
    a.shot(&shots, "06-wizard-step-3").await;
    a.click("next").await;
    assert_eq!(a.path().await, "/");
    assert_eq!(a.text("#flash-ok").await, "Project “Apollo” created.");
    assert!(
        a.text("#projects")
            .await
            .contains("Apollo (Rust): To the moon")
    );
    a.shot(&shots, "07-home-project").await;

    // Pages on other origins post forged forms to every POST route: one
    // cross-site (localhost), one same-site (127.0.0.1, another port, so
    // the session cookie goes along). Each post is refused, and the session
    // is as it was.
    let before = a.session_cookie().await.expect("a session cookie").0;
    for (host, kind) in [("localhost", "cross-site"), ("127.0.0.1", "same-site")] {
        let attacker = Attacker::start(host, &app.origin, &FORGERIES).await;
        for (n, forgery) in FORGERIES.iter().enumerate() {
            a.open(&attacker.url(n)).await;
            a.wait_for_origin(&app.origin).await;
            assert_eq!(a.path().await, forgery.route);
            let body = a.body().await;
            assert!(
                body.contains("403 Forbidden"),
                "{framework}: a {kind} forged {} post to {} was not refused: {body}",
                forgery.enctype,
                forgery.route
            );
            if n == 0 {
                a.shot(&shots, &format!("08-forged-login-refused-{kind}"))
                    .await;
            }
        }
    }
    a.open(&app.url("/")).await;
    assert_eq!(
        a.text("#who").await,
        "Ada Lovelace",
        "{framework}: still Ada"
    );
    assert!(
        a.text("#projects")
            .await
            .contains("Apollo (Rust): To the moon")
    );
    assert_eq!(
        a.session_cookie().await.expect("a session cookie").0,
        before,
        "{framework}: the session id is unchanged"
    );
    a.open(&app.url("/wizard/1")).await;
    assert_eq!(
        a.value("name").await,
        "",
        "{framework}: no forged answer was kept"
    );

    // A second device signs in as the same user with "remember me".
    b.open(&app.url("/login")).await;
    sign_in(b, "ada", "lovelace", true).await;
    assert_eq!(b.path().await, "/");
    assert!(
        b.text("#flash-ok")
            .await
            .contains("keep you signed in for 14 days")
    );
    let (_, expiry) = b.session_cookie().await.expect("a session cookie");
    let expiry = expiry.expect("remember me gives a persistent cookie");
    let days = (expiry - now_secs()) as f64 / 86_400.0;
    assert!(
        (13.9..=14.01).contains(&days),
        "{framework}: remember me lasts 14 days, not {days:.2}"
    );
    b.shot(&shots, "09-second-device-remembered").await;

    // "Your sessions" on the first lists both devices; its "sign out"
    // button for the second (which posts the session's handle) ends it.
    a.open(&app.url("/sessions")).await;
    assert_eq!(
        a.client
            .find_all(fantoccini::Locator::Css("#sessions tr.current"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(session_rows(a).await, 2, "{framework}: two sessions");
    let listed = a.text("#sessions").await;
    assert!(listed.contains("remembered") && listed.contains("this device"));
    assert!(listed.contains("Headless Chrome"), "the device label");
    let buttons = a
        .client
        .find_all(fantoccini::Locator::Css("#sessions button.end-one"))
        .await
        .unwrap();
    assert_eq!(buttons.len(), 1, "{framework}: no button for this session");
    let button = buttons[0].attr("id").await.unwrap().expect("an id");
    a.shot(&shots, "10-your-sessions").await;
    a.click(&button).await;
    assert_eq!(a.path().await, "/sessions");
    assert_eq!(a.text("#flash-ok").await, "Signed out that session.");
    assert_eq!(session_rows(a).await, 1, "{framework}: one session left");
    b.client.refresh().await.unwrap();
    b.settle().await;
    assert_eq!(
        b.path().await,
        "/login",
        "{framework}: the device signed out by its button is signed out"
    );
    assert!(!b.has("#who").await);

    // "Sign out everywhere else" with a sign-in older than the app's
    // re-authentication window (REAUTH_SECS here) asks for the password
    // first: a wrong one is refused, the right one renews the session and
    // comes back, and then the other device is signed out.
    sign_in(b, "ada", "lovelace", false).await;
    assert_eq!(b.path().await, "/");
    let age = signed_in.elapsed();
    let window = Duration::from_secs(REAUTH_SECS) + Duration::from_millis(300);
    if age < window {
        tokio::time::sleep(window - age).await;
    }
    a.open(&app.url("/sessions")).await;
    a.click("end-others").await;
    assert_eq!(a.path().await, "/confirm", "{framework}: asks again");
    assert!(a.body().await.contains("sign out your other sessions"));
    a.shot(&shots, "11-confirm-password").await;
    a.fill("password", "wrong password").await;
    a.click("confirm").await;
    assert_eq!(a.path().await, "/confirm");
    assert_eq!(a.text("#flash-error").await, "Wrong password.");
    let stale = a.session_cookie().await.expect("a session cookie").0;
    a.fill("password", "lovelace").await;
    a.click("confirm").await;
    assert_eq!(a.path().await, "/sessions", "{framework}: back after it");
    assert!(a.text("#flash-ok").await.starts_with("Password confirmed."));
    let renewed = a.session_cookie().await.expect("a session cookie").0;
    assert_ne!(renewed, stale, "{framework}: a new id on re-authentication");
    assert_eq!(session_rows(a).await, 2, "{framework}: two sessions again");
    a.click("end-others").await;
    assert_eq!(a.path().await, "/sessions");
    assert_eq!(a.text("#flash-ok").await, "Signed out 1 other session.");
    assert_eq!(session_rows(a).await, 1, "{framework}: only this one");
    a.shot(&shots, "12-signed-out-elsewhere").await;
    b.client.refresh().await.unwrap();
    b.settle().await;
    assert_eq!(
        b.path().await,
        "/login",
        "{framework}: the other device is signed out"
    );
    assert!(!b.has("#who").await);
    let before = renewed;

    // Sign out.
    a.open(&app.url("/")).await;
    a.click("sign-out").await;
    assert_eq!(a.path().await, "/login");
    assert_eq!(a.text("#flash-ok").await, "You are signed out.");
    a.shot(&shots, "13-signed-out").await;
    a.open(&app.url("/")).await;
    assert_eq!(a.path().await, "/login", "{framework}: signed out for good");
    assert!(!a.has("#flash-ok").await, "the flash was shown once");
    let after = a.session_cookie().await.map(|c| c.0);
    assert_ne!(
        after.as_deref(),
        Some(before.as_str()),
        "the old id is gone"
    );
}

#[test]
fn the_web_example_in_chromium_on_every_framework() {
    let (chromium, chromedriver) = match harness::tools() {
        Ok(paths) => paths,
        Err(why) => return session_core::testing::skip("chromium and chromedriver", &why),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        let driver = Driver::start(&chromium, &chromedriver).await;
        let a = Arc::new(driver.profile().await);
        let b = Arc::new(driver.profile().await);
        eprintln!(
            "browser: screenshots in {}",
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("browser-screenshots")
                .display()
        );
        let mut failed = Vec::new();
        // The three frameworks on the memory store, and one again on Redis
        // (a server of the test's own), where "Your sessions" and "sign out
        // everywhere else" go through the store's user index.
        let redis = LocalRedis::available().then(LocalRedis::start);
        if redis.is_none() {
            session_core::testing::skip("redis-server", "not on PATH; the Redis run is left out");
        }
        let redis_url = redis.as_ref().map(LocalRedis::url);
        let runs = [
            ("axum", env!("CARGO_BIN_EXE_web-axum"), None),
            ("actix", env!("CARGO_BIN_EXE_web-actix"), None),
            ("hyper", env!("CARGO_BIN_EXE_web-hyper"), None),
            ("actix-redis", env!("CARGO_BIN_EXE_web-actix"), redis_url),
        ];
        for (framework, bin, redis) in runs {
            if framework.ends_with("redis") && redis.is_none() {
                continue;
            }
            let t = Instant::now();
            let (a, b) = (Arc::clone(&a), Arc::clone(&b));
            // A panic in one run's flows fails the test, after the others
            // have run too.
            let run = tokio::spawn(async move { flows(framework, bin, redis, &a, &b).await });
            match tokio::time::timeout(Duration::from_secs(120), run).await {
                Ok(Ok(())) => eprintln!("browser: {framework} passed in {:.1?}", t.elapsed()),
                Ok(Err(e)) => failed.push(format!("{framework}: {e}")),
                Err(_) => failed.push(format!("{framework}: timed out")),
            }
        }
        drop(redis);
        for browser in [a, b] {
            if let Ok(browser) = Arc::try_unwrap(browser) {
                browser.close().await;
            }
        }
        drop(driver);
        eprintln!("browser: all frameworks in {:.1?}", started.elapsed());
        assert!(failed.is_empty(), "failed: {failed:#?}");
    });
}
