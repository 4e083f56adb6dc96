//! A real Docker Distribution registry (Debian's `docker-registry`) for the image
//! manager's tests: started on 127.0.0.1 on a free port with a private config and
//! storage directory, killed and cleaned up on drop.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
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
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

impl Registry {
    /// Starts a registry and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_inner(None)
    }

    /// Starts a registry that wants basic auth (htpasswd, bcrypt) for `user`/`password`.
    pub fn start_with_htpasswd(user: &str, password: &str) -> Self {
        Self::start_inner(Some((user, password)))
    }

    fn start_inner(auth: Option<(&str, &str)>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("registry-test-")
            .tempdir()
            .expect("tempdir");
        let mut auth_config = String::new();
        if let Some((user, password)) = auth {
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
            let file = dir.path().join("htpasswd");
            fs::write(&file, format!("{user}:{hash}\n")).expect("write htpasswd");
            auth_config = format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                file.display()
            );
        }
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
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken, most likely: try another
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("docker-registry did not start listening on {addr}");
                }
                sleep(Duration::from_millis(50));
            }
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
    }
}
