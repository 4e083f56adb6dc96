//! `imagectl dockerfile parse`: the dump of a real multi-stage Dockerfile, and a broken
//! file reported with its line number, the offending text and what is wrong.

use std::process::Command;

use integration_tests::bins::workspace_bin;

fn parse(text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    std::fs::write(&file, text).unwrap();
    Command::new(workspace_bin("imagectl"))
        .args(["--root"])
        .arg(dir.path().join("root"))
        .args(["dockerfile", "parse"])
        .arg(&file)
        .output()
        .unwrap()
}

#[test]
fn dump_of_a_multi_stage_file() {
    let out = parse(
        "# escape=`\nARG BASE=busybox\nFROM $BASE AS build\nENV a=1 b=\"two words\"\nRUN echo `\n  hi\nCOPY --from=build --chmod=644 [\"x y\", \"/dst/\"]\nONBUILD RUN make\nCMD ['a']\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "(arg \"BASE=busybox\")\n\
         (from \"$BASE\" \"AS\" \"build\")\n\
         (env \"a\" \"1\" \"=\" \"b\" \"\\\"two words\\\"\" \"=\")\n\
         (run \"echo   hi\")\n\
         (copy [\"--from=build\" \"--chmod=644\"] \"x y\" \"/dst/\")\n\
         (onbuild (run \"make\"))\n\
         (cmd \"['a']\")\n"
    );
}

#[test]
fn broken_file_names_line_and_text() {
    let out = parse("FROM busybox\nRUN true\nCOPY onlyone\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("COPY onlyone"), "{err}");
}
