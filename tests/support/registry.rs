//! A real Docker Distribution registry (Debian's `docker-registry`) for the image
//! manager's tests: started on 127.0.0.1 on a free port with a private config and
//! storage directory, killed and cleaned up on drop. It can require basic auth
//! (htpasswd) or bearer tokens; for the latter a small token server (Python, keys from
//! the openssl CLI) issues the JWTs the registry verifies, as Docker Hub's auth
//! service does.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A running registry.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its storage directory (blobs can be tampered with to test verification).
    pub storage: PathBuf,
    child: Child,
    token_server: Option<Child>,
    _dir: tempfile::TempDir,
}

enum Auth<'a> {
    None,
    Htpasswd(&'a str, &'a str),
    Token(&'a str, &'a str),
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The token server: checks basic credentials, grants whatever scope is asked for and
/// signs an RS256 JWT carrying its certificate (x5c), which the registry verifies
/// against its `rootcertbundle`.
const TOKEN_SERVER: &str = r#"
import base64, json, subprocess, sys, time, os
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse, parse_qs

key, cert, user, password, issuer = sys.argv[1:6]
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True, check=True).stdout

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        q = parse_qs(urlparse(self.path).query)
        want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if self.headers.get("Authorization", "") != want:
            self.send_response(401); self.send_header("Content-Length", "0"); self.end_headers(); return
        access = []
        for s in q.get("scope", []):
            for one in s.split(" "):
                parts = one.split(":")
                if len(parts) >= 3:
                    access.append({"type": parts[0], "name": ":".join(parts[1:-1]), "actions": parts[-1].split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": issuer, "sub": user, "aud": q.get("service", [""])[0], "exp": now + 600,
                  "nbf": now - 60, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing.encode(),
                             capture_output=True, check=True).stdout
        token = signing + "." + b64(sig)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

srv = HTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

fn bcrypt(password: &str) -> String {
    // bcrypt via Python's crypt module (Debian's python3), as htpasswd wants.
    let out = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            password,
        ])
        .output()
        .expect("python3 for bcrypt");
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(hash.starts_with("$2"), "no bcrypt hash: {out:?}");
    hash
}

/// Starts the token server; returns it and its port.
fn start_token_server(dir: &Path, user: &str, password: &str) -> (Child, u16) {
    let key = dir.join("token-key.pem");
    let cert = dir.join("token-cert.pem");
    let st = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=imagectl-test-token"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (apt-get install openssl)");
    assert!(st.success(), "openssl req failed");
    let script = dir.join("token_server.py");
    fs::write(&script, TOKEN_SERVER).expect("write token server");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(&key)
        .arg(&cert)
        .args([user, password, "imagectl-test-issuer"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 for the token server");
    let stdout = child.stdout.take().expect("token server stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("token server port");
    let port: u16 = match line.trim().parse() {
        Ok(p) => p,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("token server did not start: {line:?}");
        }
    };
    (child, port)
}

impl Registry {
    /// Starts an anonymous registry and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_inner(Auth::None)
    }

    /// Starts a registry that wants basic auth (htpasswd, bcrypt) for `user`/`password`.
    pub fn start_with_htpasswd(user: &str, password: &str) -> Self {
        Self::start_inner(Auth::Htpasswd(user, password))
    }

    /// Starts a registry that wants bearer tokens, issued by a token server to
    /// `user`/`password` (the WWW-Authenticate flow Docker Hub uses).
    pub fn start_with_token_auth(user: &str, password: &str) -> Self {
        Self::start_inner(Auth::Token(user, password))
    }

    fn start_inner(auth: Auth<'_>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("registry-test-")
            .tempdir()
            .expect("tempdir");
        let mut token_server = None;
        let auth_config = match auth {
            Auth::None => String::new(),
            Auth::Htpasswd(user, password) => {
                let file = dir.path().join("htpasswd");
                fs::write(&file, format!("{user}:{}\n", bcrypt(password))).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token(user, password) => {
                let (child, port) = start_token_server(dir.path(), user, password);
                token_server = Some(child);
                format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{port}/token\n    service: imagectl-test-registry\n    issuer: imagectl-test-issuer\n    rootcertbundle: {}\n",
                    dir.path().join("token-cert.pem").display()
                )
            }
        };
        let storage = dir.path().join("data");
        fs::create_dir_all(&storage).expect("mkdir storage");
        // A port can be taken between picking and binding; retry a few times.
        for _ in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_config}",
                    storage.display()
                ),
            )
            .expect("write registry config");
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn docker-registry (apt-get install docker-registry)");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if TcpStream::connect(&addr).is_ok() {
                    return Registry {
                        addr,
                        storage,
                        child,
                        token_server,
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken, most likely: try another
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    if let Some(mut t) = token_server {
                        let _ = t.kill();
                        let _ = t.wait();
                    }
                    panic!("docker-registry did not start listening on {addr}");
                }
                sleep(Duration::from_millis(50));
            }
        }
        if let Some(mut t) = token_server {
            let _ = t.kill();
            let _ = t.wait();
        }
        panic!("could not start docker-registry");
    }

    /// `127.0.0.1:PORT/REPO`.
    pub fn repo(&self, repo: &str) -> String {
        format!("{}/{repo}", self.addr)
    }

    /// Path of a blob's data in the registry's filesystem storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = &mut self.token_server {
            let _ = t.kill();
            let _ = t.wait();
        }
    }
}
