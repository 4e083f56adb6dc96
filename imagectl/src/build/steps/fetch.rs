//! ADD of a URL: the body is downloaded before the cache lookup, because its checksum
//! is part of the key (as docker's classic builder does it).

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use sha2::Digest as _;

/// Downloads `url` into `file`; returns the SHA-256 of the body (for the cache key).
pub fn fetch(url: &str, file: &Path) -> Result<String, String> {
    let resp = ureq::get(url)
        .call()
        .map_err(|e| format!("fetching {url}: {e}"))?;
    let mut reader = resp.into_body().into_reader();
    let mut f = fs::File::create(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("fetching {url}: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        f.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(hex::encode(h.finalize()))
}
