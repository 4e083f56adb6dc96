//! Registry credentials in docker's `config.json` (`auths`), read from docker's and
//! podman's usual files and written by `imagectl login` to docker's.

use std::fs;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, IoContext, Result};
use crate::store::write_file_atomic;

/// A user name and password for one registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

/// docker's config file: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
pub fn docker_config_path() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("config.json");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker/config.json")
}

fn candidate_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        v.push(PathBuf::from(f));
    }
    v.push(docker_config_path());
    if let Some(r) = std::env::var_os("XDG_RUNTIME_DIR").filter(|r| !r.is_empty()) {
        v.push(PathBuf::from(r).join("containers/auth.json"));
    }
    v
}

fn keys_for(registry: &str) -> Vec<String> {
    let mut k = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ];
    if registry == "docker.io" || registry == "registry-1.docker.io" {
        k.push("https://index.docker.io/v1/".to_string());
        k.push("index.docker.io".to_string());
    }
    k
}

/// Looks up stored credentials for `registry` (host[:port]).
pub fn lookup(registry: &str) -> Option<Credentials> {
    for file in candidate_files() {
        let Ok(bytes) = fs::read(&file) else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let Some(auths) = v.get("auths") else {
            continue;
        };
        for key in keys_for(registry) {
            if let Some(c) = auths.get(&key).and_then(decode_entry) {
                return Some(c);
            }
        }
    }
    None
}

fn decode_entry(entry: &serde_json::Value) -> Option<Credentials> {
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let raw = STANDARD.decode(auth.trim()).ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (u, p) = s.split_once(':')?;
        return Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        });
    }
    let u = entry.get("username")?.as_str()?;
    let p = entry.get("password")?.as_str()?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

/// Stores credentials for `registry` in docker's config file (mode 0600), keeping
/// everything else in it.
pub fn store(registry: &str, creds: &Credentials) -> Result<PathBuf> {
    edit(|auths| {
        let auth = STANDARD.encode(format!("{}:{}", creds.username, creds.password));
        auths.insert(registry.to_string(), serde_json::json!({ "auth": auth }));
    })
}

/// Removes stored credentials for `registry`; true if there were any.
pub fn remove(registry: &str) -> Result<bool> {
    let mut found = false;
    edit(|auths| {
        for k in keys_for(registry) {
            found |= auths.remove(&k).is_some();
        }
    })?;
    Ok(found)
}

fn edit(f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Result<PathBuf> {
    let path = docker_config_path();
    let mut v: serde_json::Value = match fs::read(&path) {
        Ok(b) => {
            serde_json::from_slice(&b).map_err(|e| Error::json(path.display().to_string(), e))?
        }
        Err(_) => serde_json::json!({}),
    };
    let obj = v
        .as_object_mut()
        .ok_or_else(|| Error::Other(format!("{}: not a JSON object", path.display())))?;
    let auths = obj
        .entry("auths")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    let auths = auths
        .as_object_mut()
        .ok_or_else(|| Error::Other(format!("{}: \"auths\" is not an object", path.display())))?;
    f(auths);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).at(dir)?;
    }
    let bytes = serde_json::to_vec_pretty(&v).map_err(|e| Error::json("config.json", e))?;
    write_file_atomic(&path, &bytes)?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).at(&path)?;
    Ok(path)
}
