//! An HTTP client for one repository of a registry (OCI distribution API), with the
//! authentication dance: anonymous first, then on a 401 either basic auth or a bearer
//! token fetched from the realm the `WWW-Authenticate` header names.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ureq::Body;
use ureq::http::Response;

use super::credentials::{self, Credentials};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::media;
use crate::reference::Reference;

/// A client bound to `registry/repository`.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    repository: String,
    creds: Option<Credentials>,
    auth: Mutex<Option<String>>,
    push: bool,
}

/// Whether a registry host is served over plain HTTP without asking: loopback only.
pub fn is_local(host: &str) -> bool {
    let h = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h == "::1" || h.starts_with("127.")
}

/// The scheme+host base URL for a registry.
pub fn base_url(host: &str, insecure: bool) -> String {
    let scheme = if insecure || is_local(host) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{host}")
}

/// Builds the agent every request goes through (statuses are inspected, not errors).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(15)))
        .user_agent("imagectl/0.1")
        .build()
        .new_agent()
}

fn transport_error(url: &str, e: ureq::Error) -> Error {
    Error::Registry {
        url: url.to_string(),
        message: format!("cannot reach registry: {e}"),
    }
}

fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn status_error(url: &str, mut resp: Response<Body>) -> Error {
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("errors")?.as_array()?.first().map(|e| {
                format!(
                    "{} {}",
                    e.get("code").and_then(|c| c.as_str()).unwrap_or(""),
                    e.get("message").and_then(|c| c.as_str()).unwrap_or("")
                )
            })
        })
        .unwrap_or_else(|| body.trim().chars().take(200).collect());
    Error::Registry {
        url: url.to_string(),
        message: format!("{status}: {}", detail.trim()),
    }
}

/// Parses `Bearer realm="..",service="..",scope=".."` into scheme and parameters.
fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_string();
        let (v, next) = if let Some(stripped) = after.strip_prefix('"') {
            match stripped.find('"') {
                Some(end) => (stripped[..end].to_string(), &stripped[end + 1..]),
                None => (stripped.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].to_string(), &after[end..]),
                None => (after.to_string(), ""),
            }
        };
        params.push((k.to_ascii_lowercase(), v));
        rest = next.trim_start_matches(',').trim();
    }
    (scheme.to_ascii_lowercase(), params)
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    /// A client for the repository `reference` names; `push` asks for push scope.
    pub fn new(reference: &Reference, insecure: bool, push: bool) -> Self {
        Client {
            agent: agent(),
            base: base_url(reference.api_host(), insecure),
            repository: reference.repository.clone(),
            creds: credentials::lookup(&reference.registry),
            auth: Mutex::new(None),
            push,
        }
    }

    /// Uses these credentials instead of the stored ones.
    pub fn with_credentials(mut self, creds: Option<Credentials>) -> Self {
        if creds.is_some() {
            self.creds = creds;
        }
        self
    }

    /// `BASE/v2/REPO/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{}", self.base, self.repository, path)
    }

    /// Absolute form of a `Location` header.
    fn absolute(&self, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else {
            format!("{}{}", self.base, loc)
        }
    }

    fn current_auth(&self) -> Option<String> {
        self.auth.lock().ok().and_then(|a| a.clone())
    }

    /// Runs a request, authenticating and retrying once on 401.
    fn execute<F>(&self, url: &str, make: F) -> Result<Response<Body>>
    where
        F: Fn(Option<&str>) -> std::result::Result<Response<Body>, ureq::Error>,
    {
        let auth = self.current_auth();
        let resp = make(auth.as_deref()).map_err(|e| transport_error(url, e))?;
        if resp.status().as_u16() != 401 {
            return Ok(resp);
        }
        let Some(challenge) = header(&resp, "www-authenticate") else {
            return Err(status_error(url, resp));
        };
        let new_auth = self.authenticate(url, &challenge)?;
        if let Ok(mut a) = self.auth.lock() {
            *a = Some(new_auth.clone());
        }
        let resp = make(Some(&new_auth)).map_err(|e| transport_error(url, e))?;
        if resp.status().as_u16() == 401 {
            let mut e = status_error(url, resp);
            if let Error::Registry { message, .. } = &mut e {
                message.push_str(if self.creds.is_some() {
                    " (credentials rejected)"
                } else {
                    " (log in with `imagectl login`)"
                });
            }
            return Err(e);
        }
        Ok(resp)
    }

    fn basic(&self) -> Option<String> {
        self.creds.as_ref().map(|c| {
            format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", c.username, c.password))
            )
        })
    }

    fn authenticate(&self, url: &str, challenge: &str) -> Result<String> {
        let (scheme, params) = parse_challenge(challenge);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match scheme.as_str() {
            "basic" => self.basic().ok_or_else(|| Error::Registry {
                url: url.to_string(),
                message: "401 Unauthorized: the registry wants a user name and password (use `imagectl login`)".into(),
            }),
            "bearer" => {
                let realm = get("realm").ok_or_else(|| Error::Registry {
                    url: url.to_string(),
                    message: "bearer challenge without a realm".into(),
                })?;
                let actions = if self.push { "pull,push" } else { "pull" };
                let scope = get("scope").unwrap_or_else(|| format!("repository:{}:{actions}", self.repository));
                let scope = if self.push && !scope.contains("push") {
                    format!("repository:{}:{actions}", self.repository)
                } else {
                    scope
                };
                let mut token_url = format!("{realm}?scope={}", url_encode(&scope));
                if let Some(service) = get("service") {
                    token_url.push_str(&format!("&service={}", url_encode(&service)));
                }
                let mut req = self.agent.get(&token_url);
                if let Some(b) = self.basic() {
                    req = req.header("Authorization", b);
                }
                let mut resp = req.call().map_err(|e| transport_error(&token_url, e))?;
                if !resp.status().is_success() {
                    let unauthorized = resp.status().as_u16() == 401;
                    let mut e = status_error(&token_url, resp);
                    if let Error::Registry { message, .. } = &mut e
                        && unauthorized
                    {
                        message.push_str(if self.creds.is_some() {
                            " (credentials rejected)"
                        } else {
                            " (log in with `imagectl login`)"
                        });
                    }
                    return Err(e);
                }
                let body = resp
                    .body_mut()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_vec()
                    .map_err(|e| transport_error(&token_url, e))?;
                let v: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| Error::json(format!("token from {token_url}"), e))?;
                let token = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| Error::Registry {
                        url: token_url.clone(),
                        message: "token response without a token".into(),
                    })?;
                Ok(format!("Bearer {token}"))
            }
            other => Err(Error::Registry {
                url: url.to_string(),
                message: format!("unsupported authentication scheme {other:?}"),
            }),
        }
    }

    /// Checks the registry answers and the credentials work (`GET /v2/`).
    pub fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self.execute(&url, |auth| {
            let mut r = self.agent.get(&url);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(&url, resp))
        }
    }

    /// Fetches a manifest by tag or digest: bytes and media type.
    pub fn get_manifest(&self, reference: &str) -> Result<(Vec<u8>, Option<String>)> {
        let url = self.url(&format!("manifests/{reference}"));
        let mut resp = self.execute(&url, |auth| {
            let mut r = self
                .agent
                .get(&url)
                .header("Accept", media::ACCEPT_MANIFESTS);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        if resp.status().as_u16() == 404 {
            return Err(Error::Registry {
                url,
                message: "manifest unknown: no such image in the registry".into(),
            });
        }
        if !resp.status().is_success() {
            return Err(status_error(&url, resp));
        }
        let mt = header(&resp, "content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .map_err(|e| transport_error(&url, e))?;
        Ok((bytes, mt.filter(|m| !m.is_empty())))
    }

    /// Opens a blob for streaming (the caller verifies its digest).
    pub fn get_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.execute(&url, |auth| {
            let mut r = self.agent.get(&url);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        if !resp.status().is_success() {
            return Err(status_error(&url, resp));
        }
        let url2 = url.clone();
        let reader = resp.into_body().into_reader();
        Ok(Box::new(ErrorNaming {
            inner: reader,
            url: url2,
        }))
    }

    /// Opens a blob from byte `offset` on (`Range`); `None` when the registry answers
    /// with the whole blob instead of 206.
    pub fn get_blob_from(
        &self,
        digest: &Digest,
        offset: u64,
    ) -> Result<Option<Box<dyn Read + Send>>> {
        let url = self.url(&format!("blobs/{digest}"));
        let range = format!("bytes={offset}-");
        let resp = self.execute(&url, |auth| {
            let mut r = self.agent.get(&url).header("Range", &range);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        match resp.status().as_u16() {
            206 => {
                let reader = resp.into_body().into_reader();
                Ok(Some(Box::new(ErrorNaming { inner: reader, url })))
            }
            200 | 416 => Ok(None),
            _ => Err(status_error(&url, resp)),
        }
    }

    /// Whether the registry already has a blob (`HEAD`).
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.execute(&url, |auth| {
            let mut r = self.agent.head(&url);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        })?;
        match resp.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(status_error(&url, resp)),
        }
    }

    /// Uploads a blob: `POST` to start an upload, then one monolithic `PUT` with the
    /// content, streamed from `open()`.
    pub fn upload_blob<F>(&self, digest: &Digest, size: u64, open: F) -> Result<()>
    where
        F: Fn() -> Result<Box<dyn Read + Send>>,
    {
        let start = self.url("blobs/uploads/");
        let resp = self.execute(&start, |auth| {
            let mut r = self.agent.post(&start).header("Content-Length", "0");
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send_empty()
        })?;
        if resp.status().as_u16() != 202 {
            return Err(status_error(&start, resp));
        }
        let loc = header(&resp, "location").ok_or_else(|| Error::Registry {
            url: start.clone(),
            message: "upload started without a Location".into(),
        })?;
        let loc = self.absolute(&loc);
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put = format!("{loc}{sep}digest={}", url_encode(digest.as_str()));
        let resp = self.execute(&put, |auth| {
            let mut r = self
                .agent
                .put(&put)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Length", size.to_string());
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            let body = open().map_err(|e| ureq::Error::Io(std::io::Error::other(e.to_string())))?;
            r.send(ureq::SendBody::from_owned_reader(body))
        })?;
        if !resp.status().is_success() {
            return Err(status_error(&put, resp));
        }
        Ok(())
    }

    /// Uploads a manifest under `reference` (a tag or digest).
    pub fn put_manifest(&self, reference: &str, bytes: &[u8], media_type: &str) -> Result<()> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.execute(&url, |auth| {
            let mut r = self.agent.put(&url).header("Content-Type", media_type);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.send(bytes)
        })?;
        if !resp.status().is_success() {
            return Err(status_error(&url, resp));
        }
        Ok(())
    }
}

/// Names the blob URL in read errors, so a dropped connection says where it dropped.
struct ErrorNaming<R> {
    inner: R,
    url: String,
}

impl<R: Read> Read for ErrorNaming<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner
            .read(buf)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", self.url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p[0], ("realm".into(), "https://auth.example/token".into()));
        assert_eq!(p[2], ("scope".into(), "repository:a/b:pull".into()));
        assert!(is_local("127.0.0.1:5000"));
        assert!(is_local("localhost"));
        assert!(!is_local("example.com:5000"));
    }
}
