//! `SessionConfig`: the settings, with secure defaults, loadable with serde.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::limit::UserLimit;

/// The `SameSite` attribute of the session cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Sent with same-site requests and top-level cross-site navigations
    /// (the default: it blocks cross-site POSTs and keeps links working).
    #[default]
    Lax,
    /// Sent with every request; requires `Secure`.
    None,
}

/// A cookie-name prefix that browsers enforce (RFC 6265bis).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CookiePrefix {
    /// No prefix.
    None,
    /// `__Secure-`: browsers accept the cookie only with `Secure`, from a
    /// secure origin.
    Secure,
    /// `__Host-` (the default): as `__Secure-`, and also `Path=/` and no
    /// `Domain`, so no other host, not even a subdomain, can set or
    /// overwrite the cookie.
    #[default]
    Host,
    /// `__Host-Http-`: as `__Host-`, and also `HttpOnly`, so no script, not
    /// even one on this host, can set the cookie with `document.cookie`.
    /// In serde: `"host-http"`.
    #[serde(rename = "host-http")]
    HostHttp,
}

impl CookiePrefix {
    /// The prefix as it starts the cookie's name: `""`, `"__Secure-"`,
    /// `"__Host-"` or `"__Host-Http-"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Secure => "__Secure-",
            Self::Host => "__Host-",
            Self::HostHttp => "__Host-Http-",
        }
    }
}

/// A directive of the `Clear-Site-Data` header, which asks the browser to
/// drop what this site keeps in it (see
/// [`SessionConfig::clear_site_data`]). In serde: `"cache"`, `"cookies"`,
/// `"storage"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ClearSiteData {
    /// `"cache"`: cached responses (pages a shared computer's next user
    /// could go back to).
    Cache,
    /// `"cookies"`: every cookie of the site, not only the session's.
    Cookies,
    /// `"storage"`: `localStorage`, `sessionStorage`, IndexedDB, service
    /// workers and the like.
    Storage,
}

impl ClearSiteData {
    /// The directive as the header quotes it: `"cache"` and so on, with
    /// the quotes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cache => "\"cache\"",
            Self::Cookies => "\"cookies\"",
            Self::Storage => "\"storage\"",
        }
    }
}

/// Signing secrets for the session cookie. The first signs; all verify.
///
/// To rotate, put the new secret first and keep the old ones after it; once
/// cookies signed with an old secret can no longer be alive (the absolute
/// lifetime has passed), remove it. `Debug` never shows the secrets.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SigningKeys(Vec<String>);

impl SigningKeys {
    /// Keys from secrets, newest first. Each must be at least 32 bytes.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(secrets.into_iter().map(Into::into).collect())
    }

    /// The secrets, newest first.
    pub fn secrets(&self) -> &[String] {
        &self.0
    }

    /// Whether no secret is set (cookies are then not signed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKeys({} secret(s))", self.0.len())
    }
}

/// How the session cookie is named, scoped and flagged.
///
/// The defaults follow OWASP ASVS 5.0 V3.3 and the Session Management Cheat
/// Sheet: a generic name that reveals nothing about the stack (`id`), the
/// `__Host-` prefix (so the name sent is `__Host-id`), `Secure` (sent over
/// HTTPS only), `HttpOnly` (out of reach of scripts), `SameSite=Lax` (no
/// cross-site POSTs), `Path=/`, no `Domain` (host only), and a
/// browser-session cookie (gone when the browser closes; the server enforces
/// the timeouts anyway).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CookieConfig {
    /// Cookie name, without the prefix. Default `id`.
    pub name: String,
    /// Cookie path. Default `/`.
    pub path: String,
    /// Cookie domain. Default none: the cookie goes to this host only.
    pub domain: Option<String>,
    /// Send only over HTTPS. Default `true`.
    pub secure: bool,
    /// Hide from scripts. Default `true`.
    pub http_only: bool,
    /// Cross-site policy. Default `Lax`.
    pub same_site: SameSite,
    /// The name's prefix. Default `__Host-`, which requires `secure`,
    /// `path = "/"` and no `domain`; `__Host-Http-` requires the same and
    /// `http_only`; `__Secure-` requires `secure`. Plain-HTTP development
    /// needs `none`.
    pub prefix: CookiePrefix,
    /// Mark the cookie `Partitioned` (CHIPS): a browser keeps it apart for
    /// each top-level site this one is embedded in, so an app that runs in
    /// other sites' iframes keeps its sessions when third-party cookies are
    /// blocked, and no embedding site can follow a visitor across the
    /// others. Requires `secure`. Default `false`.
    pub partitioned: bool,
    /// Give the cookie a `Max-Age` so it outlives the browser session
    /// ("remember me" for everyone). Default `false`. A session can choose
    /// for itself with [`Session::set_persistent`](crate::Session::set_persistent).
    pub persistent: bool,
    /// Secrets that sign the cookie (HMAC-SHA256), newest first. Default
    /// none. With a secret, forged or tampered ids are refused before any
    /// store lookup.
    pub signing_keys: SigningKeys,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "id".to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            prefix: CookiePrefix::Host,
            partitioned: false,
            persistent: false,
            signing_keys: SigningKeys::default(),
        }
    }
}

/// How the session id travels between client and server.
///
/// The cookie is the default and what browsers want. Clients that keep no
/// cookies (native apps, scripts, other services) can carry it in a header
/// instead; the id is then handed out in a response header when a session
/// is created or renewed, and that header comes back **empty** when the
/// client must drop its id (logout, or an id that is no longer valid). The
/// same rules hold as for the cookie: strict ids (an unknown one is never
/// adopted), signing with [`CookieConfig::signing_keys`], and the same
/// timeouts, enforced on the server. `Vary: <header>` is sent as for the
/// cookie, and `Cache-Control: no-store` is stricter: on every response
/// whose handler used the session, not only those that hand the id out (see
/// [`ResponseHeaders::into_each`](crate::ResponseHeaders::into_each)).
///
/// The id header must come once: two of them (two `Authorization` headers
/// with `Bearer`), or a list in one, are refused with 401 before the
/// handler runs (see [`Presented::Ambiguous`](crate::Presented::Ambiguous)).
///
/// In JSON or TOML: `"cookie"`, `{ "header" = "x-session" }`, or
/// `{ "bearer" = "x-session" }`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// The session cookie ([`SessionConfig::cookie`]). Default.
    #[default]
    Cookie,
    /// Requests send the id in this header, and responses hand it out in
    /// the same header.
    Header(String),
    /// Requests send the id as `Authorization: Bearer <id>`; responses hand
    /// it out in this header.
    Bearer(String),
}

impl Transport {
    /// The header that hands the id out, lowercase: `set-cookie` for the
    /// cookie.
    pub fn response_header(&self) -> String {
        match self {
            Self::Cookie => "set-cookie".to_owned(),
            Self::Header(name) | Self::Bearer(name) => name.to_ascii_lowercase(),
        }
    }

    /// The request header the id comes in, lowercase.
    pub fn request_header(&self) -> String {
        match self {
            Self::Cookie => "cookie".to_owned(),
            Self::Header(name) => name.to_ascii_lowercase(),
            Self::Bearer(_) => "authorization".to_owned(),
        }
    }
}

/// The default of [`SessionConfig::max_session_bytes`]: 256 KiB.
pub const DEFAULT_MAX_SESSION_BYTES: usize = 256 * 1024;

/// Everything the engine needs to know. Deserializes from any serde format
/// (durations in whole seconds), e.g. TOML:
///
/// ```toml
/// idle_timeout = 1800
/// lifetime = 86400
/// [cookie]
/// name = "sid"
/// prefix = "host"
/// signing_keys = ["a secret of at least thirty-two bytes, newest first"]
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// How the id travels: the cookie (default) or a header.
    pub transport: Transport,
    /// The session cookie (with a header [`transport`](Self::transport),
    /// only its signing keys apply).
    pub cookie: CookieConfig,
    /// A session unused for this long ends. Default 1 hour.
    #[serde(with = "secs")]
    pub idle_timeout: Duration,
    /// A session ends this long after it was created, however active.
    /// Default 7 days.
    #[serde(with = "secs")]
    pub lifetime: Duration,
    /// A request that changes nothing refreshes the idle timeout in the store
    /// only when this much time (or half the idle timeout, if less) has
    /// passed since the last refresh, so read-only requests rarely write.
    /// Zero refreshes on every request. Default 60 seconds.
    #[serde(with = "secs")]
    pub touch_interval: Duration,
    /// Store each session under a SHA-256 hash of its id instead of the id,
    /// so a leaked store dump yields no usable ids. Default `false`.
    pub hash_ids_at_rest: bool,
    /// The HTTP status adapters answer with when the store fails. Default 503.
    pub store_error_status: u16,
    /// The most one session's values may hold, counted as the bytes of the
    /// keys plus the bytes of their stored JSON text. Default 256 KiB.
    ///
    /// A write that would take a session over it is refused with
    /// [`Error::TooLarge`] before anything changes, so every request reads a
    /// bounded session and one visitor cannot grow a store without end.
    /// Writes that shrink a session are always allowed.
    ///
    /// It is checked twice: by the handle, against the session as the
    /// request loaded it (the handler gets the error at once), and by the
    /// store, where it merges the request's changes into the session as it
    /// holds it then, in the same atomic step
    /// ([`Update::max_bytes`](crate::Update::max_bytes)). So concurrent
    /// requests that each fit cannot pass it together: the one that would
    /// cross it is answered 413 instead of its handler's response, and
    /// changes nothing.
    pub max_session_bytes: usize,
    /// What the browser is asked to clear (`Clear-Site-Data`) on a response
    /// that ends the session ([`Session::destroy`](crate::Session::destroy):
    /// a logout, or ending the current session among others). Default
    /// none. Sent once, in this order: `"cache"`, `"cookies"`, `"storage"`.
    ///
    /// When the same response starts a new session (a handler that
    /// destroys and then writes, such as a flash message saying "signed
    /// out"), `"cookies"` is left out, as it would take the new cookie
    /// with it.
    pub clear_site_data: Vec<ClearSiteData>,
    /// At most this many live sessions per user, and what one more does
    /// (the least recently used ends, or the login is refused with 409).
    /// Default none: unlimited. Checked by the store in the same atomic step
    /// as the write that gives a session its user, so concurrent logins of
    /// one user cannot pass it together. In TOML:
    /// `max_sessions_per_user = { max = 3, policy = "refuse" }`.
    pub max_sessions_per_user: Option<UserLimit>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            transport: Transport::Cookie,
            cookie: CookieConfig::default(),
            idle_timeout: Duration::from_secs(60 * 60),
            lifetime: Duration::from_secs(7 * 24 * 60 * 60),
            touch_interval: Duration::from_secs(60),
            hash_ids_at_rest: false,
            store_error_status: 503,
            max_session_bytes: DEFAULT_MAX_SESSION_BYTES,
            clear_site_data: Vec::new(),
            max_sessions_per_user: None,
        }
    }
}

impl SessionConfig {
    /// Checks the rules that a config must follow.
    pub fn validate(&self) -> Result<(), Error> {
        let c = &self.cookie;
        let bad = |why: &str| Err(Error::Config(why.to_owned()));
        if c.name.is_empty() || !c.name.bytes().all(is_token_byte) {
            return bad("the cookie name must be a non-empty HTTP token");
        }
        if !c.path.starts_with('/') || !c.path.bytes().all(is_attr_byte) {
            return bad("the cookie path must start with '/' and hold no ';' or control bytes");
        }
        if let Some(domain) = &c.domain
            && (domain.is_empty() || !domain.bytes().all(is_attr_byte))
        {
            return bad("the cookie domain must be non-empty and hold no ';' or control bytes");
        }
        // The rules follow the name as sent, whether the prefix came from
        // `prefix` or from `name`: browsers match prefixes ignoring case,
        // and drop a cookie that breaks its prefix's rules in silence.
        let sent = self.cookie_name().to_ascii_lowercase();
        let host_http = sent.starts_with("__host-http-");
        let host = host_http || sent.starts_with("__host-");
        if (host || sent.starts_with("__secure-") || sent.starts_with("__http-")) && !c.secure {
            return bad(
                "a cookie name starting with __Host-, __Host-Http-, __Http- or __Secure- \
                 requires secure = true (set prefix = \"none\" and a plain name for plain HTTP)",
            );
        }
        if host && (c.path != "/" || c.domain.is_some()) {
            return bad(
                "the __Host- and __Host-Http- prefixes require path = \"/\" and no domain \
                 (set prefix = \"secure\" or \"none\" to use another path or a domain)",
            );
        }
        if (host_http || sent.starts_with("__http-")) && !c.http_only {
            return bad("the __Host-Http- and __Http- prefixes require http_only = true");
        }
        if c.partitioned && !c.secure {
            return bad("a partitioned cookie requires secure = true");
        }
        if c.same_site == SameSite::None && !c.secure {
            return bad("SameSite=None requires secure = true");
        }
        if let Transport::Header(name) | Transport::Bearer(name) = &self.transport {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return bad("the transport header name must be a non-empty HTTP token");
            }
            let reserved = [
                "cookie",
                "set-cookie",
                "authorization",
                "vary",
                "cache-control",
                "clear-site-data",
            ];
            if reserved.iter().any(|r| name.eq_ignore_ascii_case(r)) {
                return bad(
                    "the transport header must not be cookie, set-cookie, authorization, \
                     vary, cache-control or clear-site-data \
                     (use transport = \"cookie\" or \"bearer\")",
                );
            }
        }
        if c.signing_keys.0.iter().any(|k| k.len() < 32) {
            return bad("each signing key must be at least 32 bytes");
        }
        if self.idle_timeout.is_zero() || self.lifetime.is_zero() {
            return bad("idle_timeout and lifetime must be greater than zero");
        }
        if self.max_session_bytes == 0 {
            return bad("max_session_bytes must be greater than zero");
        }
        if self.max_sessions_per_user.is_some_and(|l| l.max == 0) {
            return bad("max_sessions_per_user.max must be at least 1");
        }
        if !(500..=599).contains(&self.store_error_status) {
            return bad("store_error_status must be a 5xx status");
        }
        Ok(())
    }

    /// The `Clear-Site-Data` value for a response that ends the session
    /// (see [`clear_site_data`](Self::clear_site_data)): the directives
    /// quoted, comma-separated, each once, in a fixed order; without
    /// `"cookies"` if `keep_cookies`. `None` when that leaves none.
    pub(crate) fn clear_site_data_value(&self, keep_cookies: bool) -> Option<Arc<str>> {
        let mut directives = self.clear_site_data.clone();
        directives.sort_unstable();
        directives.dedup();
        directives.retain(|d| !(keep_cookies && *d == ClearSiteData::Cookies));
        let value = directives
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        (!value.is_empty()).then(|| value.into())
    }

    /// The cookie's name as sent, with its prefix.
    pub fn cookie_name(&self) -> String {
        format!("{}{}", self.cookie.prefix.as_str(), self.cookie.name)
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_attr_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b';'
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_secure_choice_and_valid() {
        let config = SessionConfig::default();
        config.validate().unwrap();
        assert!(config.cookie.secure && config.cookie.http_only);
        assert_eq!(config.cookie.same_site, SameSite::Lax);
        assert_eq!(config.idle_timeout, Duration::from_secs(3600));
        assert_eq!(config.lifetime, Duration::from_secs(604_800));
        assert_eq!(config.max_session_bytes, 262_144);
    }

    #[test]
    fn prefix_rules_are_enforced() {
        let config = SessionConfig::default();
        config.validate().unwrap();
        assert_eq!(config.cookie_name(), "__Host-id");
        for broken in [
            |c: &mut CookieConfig| c.secure = false,
            |c: &mut CookieConfig| c.path = "/app".into(),
            |c: &mut CookieConfig| c.domain = Some("example.com".into()),
        ] {
            let mut bad = config.clone();
            broken(&mut bad.cookie);
            assert!(matches!(bad.validate(), Err(Error::Config(_))));
        }
        let mut secure_only = config.clone();
        secure_only.cookie.prefix = CookiePrefix::Secure;
        secure_only.cookie.path = "/app".into();
        secure_only.validate().unwrap();
        assert_eq!(secure_only.cookie_name(), "__Secure-id");
        secure_only.cookie.secure = false;
        assert!(secure_only.validate().is_err());
        let mut plain = config;
        plain.cookie.prefix = CookiePrefix::None;
        plain.cookie.secure = false;
        plain.validate().unwrap();
        assert_eq!(plain.cookie_name(), "id");
    }

    #[test]
    fn host_http_prefix_also_requires_http_only() {
        let mut config = SessionConfig::default();
        config.cookie.prefix = CookiePrefix::HostHttp;
        config.validate().unwrap();
        assert_eq!(config.cookie_name(), "__Host-Http-id");
        for broken in [
            |c: &mut CookieConfig| c.secure = false,
            |c: &mut CookieConfig| c.http_only = false,
            |c: &mut CookieConfig| c.path = "/app".into(),
            |c: &mut CookieConfig| c.domain = Some("example.com".into()),
        ] {
            let mut bad = config.clone();
            broken(&mut bad.cookie);
            assert!(matches!(bad.validate(), Err(Error::Config(_))), "{bad:?}");
        }
        // __Host- alone does not ask for HttpOnly.
        config.cookie.prefix = CookiePrefix::Host;
        config.cookie.http_only = false;
        config.validate().unwrap();
    }

    #[test]
    fn a_prefix_spelt_in_the_name_brings_its_rules() {
        // Browsers read the prefix off the name sent, in any case: a name
        // that carries one must follow its rules as if `prefix` said so.
        for (prefix, name) in [
            (CookiePrefix::None, "__Host-id"),
            (CookiePrefix::None, "__host-id"),
            (CookiePrefix::None, "__SECURE-id"),
            (CookiePrefix::None, "__Host-Http-id"),
            (CookiePrefix::None, "__Http-id"),
            (CookiePrefix::Secure, "Http-id"),
        ] {
            let mut config = SessionConfig::default();
            config.cookie.prefix = prefix;
            config.cookie.name = name.into();
            config.validate().unwrap();
            config.cookie.secure = false;
            assert!(config.validate().is_err(), "{name} without Secure");
        }
        let mut config = SessionConfig::default();
        config.cookie.prefix = CookiePrefix::None;
        config.cookie.name = "__host-id".into();
        config.cookie.path = "/app".into();
        assert!(config.validate().is_err(), "__host- with a path");
        for (prefix, name) in [
            (CookiePrefix::None, "__Host-Http-id"),
            (CookiePrefix::None, "__http-id"),
            // `__Host-` and `Http-x` make `__Host-Http-x`.
            (CookiePrefix::Host, "Http-id"),
        ] {
            let mut config = SessionConfig::default();
            config.cookie.prefix = prefix;
            config.cookie.name = name.into();
            config.cookie.http_only = false;
            assert!(config.validate().is_err(), "{name} without HttpOnly");
        }
    }

    #[test]
    fn partitioned_requires_secure() {
        let mut config = SessionConfig::default();
        config.cookie.partitioned = true;
        config.validate().unwrap();
        config.cookie.prefix = CookiePrefix::None;
        config.cookie.secure = false;
        assert!(matches!(config.validate(), Err(Error::Config(_))));
        config.cookie.partitioned = false;
        config.validate().unwrap();
    }

    #[test]
    fn clear_site_data_is_quoted_once_each_in_a_fixed_order() {
        let mut config = SessionConfig::default();
        assert_eq!(config.clear_site_data_value(false), None);
        config.clear_site_data = vec![
            ClearSiteData::Storage,
            ClearSiteData::Cookies,
            ClearSiteData::Cache,
            ClearSiteData::Storage,
        ];
        assert_eq!(
            config.clear_site_data_value(false).as_deref(),
            Some(r#""cache", "cookies", "storage""#)
        );
        assert_eq!(
            config.clear_site_data_value(true).as_deref(),
            Some(r#""cache", "storage""#)
        );
        config.clear_site_data = vec![ClearSiteData::Cookies];
        assert_eq!(
            config.clear_site_data_value(false).as_deref(),
            Some(r#""cookies""#)
        );
        assert_eq!(config.clear_site_data_value(true), None);
    }

    #[test]
    fn rejects_short_keys_bad_names_and_insecure_same_site_none() {
        let mut config = SessionConfig::default();
        config.cookie.signing_keys = SigningKeys::new(["short"]);
        assert!(config.validate().is_err());
        let mut config = SessionConfig::default();
        config.cookie.name = "bad name".into();
        assert!(config.validate().is_err());
        let mut config = SessionConfig::default();
        config.cookie.prefix = CookiePrefix::None;
        config.cookie.same_site = SameSite::None;
        config.cookie.secure = false;
        assert!(config.validate().is_err());
    }

    #[test]
    fn loads_from_serde_with_defaults_for_what_is_missing() {
        let config: SessionConfig = serde_json::from_str(
            r#"{
                "idle_timeout": 1800,
                "touch_interval": 0,
                "cookie": {
                    "name": "sid",
                    "prefix": "secure",
                    "path": "/app",
                    "same_site": "strict",
                    "persistent": true,
                    "signing_keys": ["newest secret of at least thirty-two bytes", "an older secret, also thirty-two bytes or more"]
                }
            }"#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.idle_timeout, Duration::from_secs(1800));
        assert_eq!(
            config.lifetime,
            Duration::from_secs(604_800),
            "missing fields keep their default"
        );
        assert_eq!(config.touch_interval, Duration::ZERO);
        assert_eq!(config.cookie_name(), "__Secure-sid");
        assert_eq!(config.cookie.same_site, SameSite::Strict);
        assert!(config.cookie.secure && config.cookie.http_only && config.cookie.persistent);
        assert_eq!(config.cookie.signing_keys.secrets().len(), 2);
        // A misspelt setting is an error, not a silently ignored default.
        assert!(serde_json::from_str::<SessionConfig>(r#"{"idle_timout": 10}"#).is_err());
        let config: SessionConfig = serde_json::from_str(
            r#"{"cookie": {"prefix": "host-http", "partitioned": true}, "clear_site_data": ["cache", "cookies"]}"#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.cookie_name(), "__Host-Http-id");
        assert!(config.cookie.partitioned);
        assert_eq!(
            config.clear_site_data,
            [ClearSiteData::Cache, ClearSiteData::Cookies]
        );
        assert!(
            serde_json::from_str::<SessionConfig>(r#"{"clear_site_data": ["everything"]}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<SessionConfig>(r#"{"cookie": {"secure": "no"}}"#).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let keys = SigningKeys::new(["x".repeat(40)]);
        assert!(!format!("{keys:?}").contains("xxxx"));
    }
}
