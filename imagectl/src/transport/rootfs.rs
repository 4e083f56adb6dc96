//! `import`: a root filesystem (tar, directory or stdin) becomes a one-layer image, as
//! `docker import` does.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::oci::config::now_rfc3339;
use crate::oci::{History, ImageConfig};
use crate::reference::Reference;
use crate::store::{Image, Store};

/// Imports `source` (`-` for stdin, a directory, or a tar in any compression) as an
/// image tagged `name`, with an optional commit `message`.
pub fn import_rootfs(
    store: &Store,
    source: &str,
    name: Option<&Reference>,
    message: Option<&str>,
) -> Result<Image> {
    let _content = store.content_lock()?;
    let layer = if source == "-" {
        store.add_layer_tar(BufReader::new(std::io::stdin().lock()), None)?
    } else {
        let p = Path::new(source);
        if p.is_dir() {
            store.add_layer_dir(p, None)?
        } else {
            let f = File::open(p).at(p)?;
            store.add_layer_tar(BufReader::new(f), None)?
        }
    };
    let mut config = ImageConfig::new_for_host();
    config.rootfs.diff_ids = vec![layer.diff_id.clone()];
    config.history = vec![History {
        created: Some(now_rfc3339()),
        created_by: Some(format!("imagectl import {source}")),
        comment: Some(
            message
                .map(str::to_string)
                .unwrap_or_else(|| format!("Imported from {source}")),
        ),
        ..Default::default()
    }];
    store.commit_image(&config, &[layer.descriptor], name)
}
