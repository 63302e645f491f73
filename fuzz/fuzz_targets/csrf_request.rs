//! Arbitrary request facts (method, Host, Origin, Sec-Fetch-Site, the
//! token header, Content-Type) and body, split on `0xff`, through the CSRF
//! check. Whatever it gets, it must not panic, and an unsafe request must
//! never pass the token policy: the session's token is one the input cannot
//! know.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::Session;
use session_core::csrf::{self, CsrfPolicy, CsrfStep, RequestFacts};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xff);
    let mut next = || parts.next();
    let method = next().unwrap_or_default();
    let facts = RequestFacts {
        method,
        host: next(),
        origin: next(),
        sec_fetch_site: next(),
        header_token: next(),
        content_type: next(),
        accept: next(),
    };
    let body = next().unwrap_or_default();
    let session = Session::detached();
    csrf::token(&session).unwrap();
    let policy = CsrfPolicy::new();
    let _ = CsrfPolicy::same_site_only().check_origin(&facts);
    let _ = csrf::form_value(body, "csrf_token");
    let unsafe_method = !csrf::is_safe_method(method);
    match policy.decide(&facts, &session) {
        CsrfStep::Allow => assert!(!unsafe_method, "an unsafe request passed without the token"),
        CsrfStep::ReadForm => {
            assert!(policy.decide_with_form(&session, body).is_err());
        }
        CsrfStep::Refuse(refused) => {
            let _ = refused.body(facts.accept);
        }
    }
});
