//! A small HTTP/1.1 client over raw TCP, and a browser-like cookie jar.
//!
//! Raw, so tests can send what real clients refuse to build: non-UTF-8
//! bytes, 8 KB cookies, hundreds of cookies, duplicates.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed response.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// All values of a header.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The session `Set-Cookie`, if any (the suite's cookie is named `__Host-id`).
    pub fn set_cookie(&self) -> Option<&str> {
        self.all("set-cookie")
            .into_iter()
            .find(|c| c.starts_with("__Host-id="))
    }

    /// The attributes of the session `Set-Cookie`, lowercased names.
    pub fn cookie_attributes(&self) -> Vec<String> {
        self.set_cookie().map_or_else(Vec::new, |c| {
            c.split("; ").skip(1).map(str::to_owned).collect()
        })
    }
}

/// Sends `method path` with these header lines, in order (a name may come
/// more than once), and a body; reads the whole response.
pub async fn send_headers(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    send_raw(addr, head.as_bytes(), body.as_bytes()).await
}

/// Sends raw request head bytes (and a body) and reads the whole response.
pub async fn send_raw(addr: SocketAddr, head: &[u8], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = head.to_vec();
    request.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(body);
    stream.write_all(&request).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
    out
}

/// A browser's view of one site: it keeps the session cookie as a browser
/// would (replaced by each `Set-Cookie`, dropped by a removal).
#[derive(Clone, Debug)]
pub struct Browser {
    addr: SocketAddr,
    /// The session cookie's value, if the browser holds one.
    pub cookie: Option<String>,
}

impl Browser {
    /// A browser with no cookies.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, cookie: None }
    }

    /// The same browser pointed at another server (sharing the cookie, as
    /// a load balancer would).
    pub fn at(&self, addr: SocketAddr) -> Self {
        Self {
            addr,
            cookie: self.cookie.clone(),
        }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, b"").await
    }

    /// `POST path` with a body.
    pub async fn post(&mut self, path: &str, body: &str) -> Response {
        self.request("POST", path, body.as_bytes()).await
    }

    /// A request carrying the browser's cookie; applies the response's
    /// `Set-Cookie`.
    pub async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Response {
        self.request_as(method, path, Some("application/json"), body)
            .await
    }

    /// As [`request`](Self::request), with this `Content-Type` (or none).
    pub async fn request_as(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Response {
        let content_types: &[&str] = match &content_type {
            Some(content_type) => std::slice::from_ref(content_type),
            None => &[],
        };
        self.request_with(method, path, content_types, body).await
    }

    /// As [`request`](Self::request), with one `Content-Type` header line
    /// per entry of `content_types`, in order (none when empty).
    pub async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        content_types: &[&str],
        body: &[u8],
    ) -> Response {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for content_type in content_types {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        if let Some(cookie) = &self.cookie {
            head.push_str(&format!("Cookie: __Host-id={cookie}\r\n"));
        }
        let res = send_raw(self.addr, head.as_bytes(), body).await;
        self.apply(&res);
        res
    }

    /// Applies a response's session `Set-Cookie`.
    pub fn apply(&mut self, res: &Response) {
        if let Some(set) = res.set_cookie() {
            let value = set
                .split(';')
                .next()
                .unwrap_or_default()
                .trim_start_matches("__Host-id=");
            let removed = value.is_empty() || set.contains("Max-Age=0");
            self.cookie = (!removed).then(|| value.to_owned());
        }
    }

    /// Logs in as `user` with `data`; panics unless 200.
    pub async fn login(&mut self, user: &str, data: Value) -> Response {
        let body = serde_json::json!({ "username": user, "data": data }).to_string();
        let res = self.post("/session/login", &body).await;
        assert_eq!(
            res.status,
            200,
            "login failed: {:?}",
            String::from_utf8_lossy(&res.body)
        );
        res
    }
}
