//! Planning a build before any step runs: which stages the target needs, and the
//! values FROM lines and stage ARGs can draw on beyond the Dockerfile's own (docker's
//! automatic platform ARGs).

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::{CopySpec, Dockerfile, Instruction};
use crate::oci::Platform;

/// The automatic platform ARGs docker defines (`BUILDPLATFORM`, `TARGETARCH`, ...):
/// usable in FROM lines and, once declared with `ARG NAME`, in a stage. Builds here are
/// always for the host.
pub fn platform_args() -> BTreeMap<String, String> {
    let p = Platform::host();
    let variant = p.variant.clone().unwrap_or_default();
    let platform = match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    };
    let mut out = BTreeMap::new();
    for side in ["BUILD", "TARGET"] {
        out.insert(format!("{side}PLATFORM"), platform.clone());
        out.insert(format!("{side}OS"), p.os.clone());
        out.insert(format!("{side}ARCH"), p.architecture.clone());
        out.insert(format!("{side}VARIANT"), variant.clone());
    }
    out
}

/// Whether the global ARGs (before the first FROM) declare `name`.
pub fn global_declares(df: &Dockerfile, name: &str) -> bool {
    df.global_args.iter().any(|l| match &l.instruction {
        Instruction::Arg(decls) => decls.iter().any(|d| d.name == name),
        _ => false,
    })
}

/// The stages `target` needs (itself, its FROM stage, its COPY --from stages,
/// recursively), in file order.
pub fn needed_stages(
    df: &Dockerfile,
    target: usize,
    global: &BTreeMap<String, String>,
) -> Vec<usize> {
    let lex = df.lexer();
    let mut need = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !need.insert(i) {
            continue;
        }
        let stage = &df.stages[i];
        if let Ok(img) = lex.expand(&stage.from.image, global)
            && let Some(j) = earlier_stage_named(df, i, &img)
        {
            todo.push(j);
        }
        for l in &stage.instructions {
            if let Instruction::Copy(CopySpec { from: Some(f), .. }) = &l.instruction
                && let Ok(name) = lex.expand(f, global)
                && let Some(j) = df.stage_index(&name).filter(|j| *j < i)
            {
                todo.push(j);
            }
        }
    }
    need.into_iter().collect()
}

/// The index of a stage before `i` called `name` (FROM refers to stages by name only).
pub fn earlier_stage_named(df: &Dockerfile, i: usize, name: &str) -> Option<usize> {
    df.stages[..i]
        .iter()
        .position(|s| s.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
}
