//! Platforms (`linux/amd64`, `linux/arm64/v8`): what an index entry is built for and what
//! this host runs.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The platform object of an index entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// GOARCH-style architecture: amd64, arm64, ...
    pub architecture: String,
    /// GOOS-style OS: linux.
    pub os: String,
    /// CPU variant (v7, v8), when relevant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS version, for Windows images.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

/// The Go name of this host's architecture, as image configs spell it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

impl Platform {
    /// This host: linux and its architecture.
    pub fn host() -> Self {
        Platform {
            architecture: host_arch().to_string(),
            os: "linux".to_string(),
            variant: if host_arch() == "arm64" {
                Some("v8".to_string())
            } else {
                None
            },
            os_version: None,
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts.get(2).map(|v| v.to_string()),
                os_version: None,
            }),
            _ => Err(Error::Other(format!(
                "invalid platform {s:?}: expected os/arch[/variant]"
            ))),
        }
    }

    /// Whether an index entry for `other` can serve a request for `self`: os and arch
    /// equal, and the variant equal when both name one (arm64's v8 is the default).
    pub fn matches(&self, other: &Platform) -> bool {
        if self.os != other.os || self.architecture != other.architecture {
            return false;
        }
        match (&self.variant, &other.variant) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}
