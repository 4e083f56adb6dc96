//! `imagectl build` end to end on a busybox-static base: every instruction's effect in
//! the image config, the filesystem and a container (a child build's RUN checks what a
//! container of the image sees), the layer cache (reuse, invalidation, `--no-cache`,
//! `--explain-cache`, surviving `rmi`), multi-stage builds, ADD of local archives and a
//! URL, `.dockerignore`, build args, ONBUILD, and failures that tag nothing.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use integration_tests::build::{
    BuildContext, MountedImage, build, build_ok, image_id, mounts_under,
};
use integration_tests::images::{Imagectl, import_busybox};

fn setup() -> Imagectl {
    let ctl = Imagectl::new();
    import_busybox(&ctl, "busybox:latest");
    ctl
}

fn tar_into(ctx: &BuildContext, name: &str, flag: &str, files: &[(&str, &str)]) {
    let src = tempfile::tempdir().unwrap();
    for (n, c) in files {
        std::fs::write(src.path().join(n), c).unwrap();
    }
    let mut cmd = Command::new("tar");
    if !flag.is_empty() {
        cmd.arg(flag);
    }
    let st = cmd
        .arg("-cf")
        .arg(ctx.path().join(name))
        .arg("-C")
        .arg(src.path())
        .args(files.iter().map(|(n, _)| *n))
        .status()
        .unwrap();
    assert!(st.success());
}

const EVERYTHING: &str = r#"FROM busybox
MAINTAINER someone <s@example.com>
LABEL org.example.name="demo app" version=1
ENV APP_HOME=/srv/app MODE=test
ENV LEGACY legacy value
WORKDIR $APP_HOME
RUN echo "mode=$MODE cwd=$(pwd)" > run.txt
COPY app/ ./
COPY --chown=nobody:nogroup --chmod=640 single.txt /etc/single.txt
COPY single.txt relative-file
ADD bundle.tar.gz /opt/bundle/
ADD plain.tar packed.tar.xz /opt/more/
ADD not-a-tar.gz /opt/
COPY <<EOF /etc/motd
welcome to $MODE
EOF
RUN <<EOT
echo heredoc > /srv/heredoc.txt
EOT
SHELL ["/bin/sh", "-ec"]
RUN echo "shell=$0" > /srv/shell.txt
EXPOSE 8080 53/udp
VOLUME /data
USER nobody
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=2 CMD wget -q localhost:8080 || exit 1
ONBUILD RUN echo from-trigger-$MODE
CMD ["./main.sh"]
"#;

#[test]
fn every_instruction_takes_effect() {
    let ctl = setup();
    let ctx = BuildContext::new();
    ctx.write("app/main.sh", "echo main\n")
        .chmod("app/main.sh", 0o755)
        .write("app/conf/a.conf", "a=1\n")
        .write("single.txt", "single\n");
    tar_into(
        &ctx,
        "bundle.tar.gz",
        "-z",
        &[("t1.txt", "one\n"), ("t2.txt", "two\n")],
    );
    tar_into(&ctx, "plain.tar", "", &[("p.txt", "plain\n")]);
    tar_into(&ctx, "packed.tar.xz", "-J", &[("x.txt", "xz\n")]);
    std::fs::write(ctx.path().join("not-a-tar.gz"), "just text\n").unwrap();
    ctx.dockerfile(EVERYTHING);
    let out = build_ok(&ctl, &ctx, &["-t", "demo:1", "-t", "demo:alias"]);
    assert!(out.contains("Step 1/24 : FROM busybox"), "{out}");
    assert!(out.contains("Step 7/24 : RUN echo"), "{out}");
    assert!(out.contains("Successfully tagged demo:1"), "{out}");
    assert!(out.contains("Successfully tagged demo:alias"), "{out}");
    assert!(out.contains("Build finished in"), "{out}");
    assert_eq!(image_id(&ctl, "demo:1"), image_id(&ctl, "demo:alias"));

    let info = ctl.inspect("demo:1");
    let c = &info["Config"];
    assert_eq!(info["Author"], "someone <s@example.com>");
    assert_eq!(c["Labels"]["org.example.name"], "demo app");
    assert_eq!(c["Labels"]["version"], "1");
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"APP_HOME=/srv/app"), "{env:?}");
    assert!(env.contains(&"LEGACY=legacy value"), "{env:?}");
    assert!(
        env.contains(&"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "a base without PATH gets docker's default: {env:?}"
    );
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["StopSignal"], "SIGINT");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object(), "{c}");
    assert!(c["ExposedPorts"]["53/udp"].is_object(), "{c}");
    assert!(c["Volumes"]["/data"].is_object(), "{c}");
    assert_eq!(c["Cmd"], serde_json::json!(["./main.sh"]));
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(
        c["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "wget -q localhost:8080 || exit 1"])
    );
    assert_eq!(c["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Retries"], 2);
    assert_eq!(
        c["OnBuild"],
        serde_json::json!(["RUN echo from-trigger-$MODE"])
    );

    // History: one entry per step after the base, docker-style, with sizes.
    let hist = ctl.ok(&["history", "--no-trunc", "demo:1"]);
    for want in [
        "/bin/sh -c #(nop)  CMD [\"./main.sh\"]",
        "/bin/sh -c #(nop)  ENV APP_HOME=/srv/app MODE=test",
        "/bin/sh -c #(nop) WORKDIR /srv/app",
        "/bin/sh -c echo \"mode=$MODE cwd=$(pwd)\" > run.txt",
        "/bin/sh -c #(nop) COPY dir:",
        "/bin/sh -c #(nop) COPY file:",
        "/bin/sh -c #(nop) ADD file:",
        "/bin/sh -c #(nop)  USER nobody",
        "/bin/sh -c #(nop)  VOLUME [/data]",
        "/bin/sh -c #(nop)  ONBUILD RUN echo from-trigger-$MODE",
        "/bin/sh -ec echo \"shell=$0\" > /srv/shell.txt",
    ] {
        assert!(hist.contains(want), "history lacks {want:?}:\n{hist}");
    }
    let run_line = hist
        .lines()
        .find(|l| l.contains("> run.txt"))
        .expect("RUN in history");
    assert!(
        run_line.contains("23B"),
        "RUN entry has its size: {run_line}"
    );
    assert_eq!(hist.lines().count(), 1 + 1 + 23, "{hist}");
    assert!(hist.contains("EXPOSE 53/udp 8080/tcp"), "{hist}");
    // base + WORKDIR + 3 RUN + 4 COPY + 3 ADD = 12 layers
    let layers = info["RootFS"]["Layers"].as_array().unwrap().len();
    assert_eq!(layers, 12, "{hist}");

    // The filesystem.
    let m = MountedImage::new(&ctl, "demo:1");
    assert_eq!(
        m.read("/srv/app/run.txt").unwrap(),
        "mode=test cwd=/srv/app\n"
    );
    assert_eq!(m.read("/srv/app/main.sh").unwrap(), "echo main\n");
    assert_eq!(m.meta("/srv/app/main.sh").unwrap().mode() & 0o777, 0o755);
    assert_eq!(m.read("/srv/app/conf/a.conf").unwrap(), "a=1\n");
    let single = m.meta("/etc/single.txt").unwrap();
    assert_eq!((single.uid(), single.gid()), (65534, 65534));
    assert_eq!(single.permissions().mode() & 0o777, 0o640);
    let plain_copy = m.meta("/srv/app/relative-file").unwrap();
    assert_eq!((plain_copy.uid(), plain_copy.gid()), (0, 0));
    assert_eq!(m.read("/opt/bundle/t1.txt").unwrap(), "one\n");
    assert_eq!(m.read("/opt/bundle/t2.txt").unwrap(), "two\n");
    assert!(m.meta("/opt/bundle/bundle.tar.gz").is_none());
    assert_eq!(m.read("/opt/more/p.txt").unwrap(), "plain\n");
    assert_eq!(m.read("/opt/more/x.txt").unwrap(), "xz\n");
    assert_eq!(m.read("/opt/not-a-tar.gz").unwrap(), "just text\n");
    assert_eq!(m.read("/etc/motd").unwrap(), "welcome to test\n");
    assert_eq!(m.read("/srv/heredoc.txt").unwrap(), "heredoc\n");
    assert_eq!(m.read("/srv/shell.txt").unwrap(), "shell=/bin/sh\n");
    drop(m);

    // In a container: a child build's RUN sees USER, ENV and WORKDIR, and the ONBUILD
    // trigger fires first.
    let child = BuildContext::new();
    child.dockerfile(
        "FROM demo:1\nRUN test \"$(id -u)\" = 65534 && test \"$(pwd)\" = /srv/app && test \"$MODE\" = test && test -x ./main.sh\nENTRYPOINT [\"/bin/echo\"]\n",
    );
    let out = build_ok(&ctl, &child, &["-t", "child:1"]);
    assert!(out.contains("# Executing 1 build trigger"), "{out}");
    assert!(out.contains("from-trigger-test\n"), "{out}");
    let cc = &ctl.inspect("child:1")["Config"];
    assert!(cc.get("OnBuild").is_none_or(|v| v.is_null()), "{cc}");
    assert_eq!(cc["Entrypoint"], serde_json::json!(["/bin/echo"]));
    assert!(
        cc.get("Cmd").is_none_or(|v| v.is_null()),
        "ENTRYPOINT resets the inherited CMD: {cc}"
    );
    assert!(mounts_under(&ctl.root).is_empty());
}

#[test]
fn cache_reuse_invalidation_and_explain() {
    let ctl = setup();
    let ctx = BuildContext::new();
    ctx.write("hello.txt", "hello\n");
    ctx.dockerfile(
        "FROM busybox\nARG FLAVOR=plain\nRUN echo first > /first\nCOPY hello.txt /data/\nENV GREETING=hi\nWORKDIR /app\nRUN echo \"$GREETING $FLAVOR\" > out.txt\nCMD [\"sh\"]\n",
    );
    let first = build_ok(&ctl, &ctx, &["-t", "cached:1"]);
    assert!(!first.contains("Using cache"), "{first}");
    let id1 = image_id(&ctl, "cached:1");

    // Unchanged: every step from the cache, the same image ID.
    let again = build_ok(&ctl, &ctx, &["-t", "cached:1"]);
    assert_eq!(again.matches("Using cache").count(), 7, "{again}");
    assert_eq!(image_id(&ctl, "cached:1"), id1);

    // A touch changes nothing (mtime is not in the key).
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.path().join("hello.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    drop(f);
    let touched = build_ok(&ctl, &ctx, &["-t", "cached:1"]);
    assert_eq!(touched.matches("Using cache").count(), 7, "{touched}");

    // The cache outlives untagging the image (and rmi is not blocked by it).
    ctl.ok(&["rmi", "cached:1"]);
    let after_rmi = build_ok(&ctl, &ctx, &["-t", "cached:1"]);
    assert_eq!(after_rmi.matches("Using cache").count(), 7, "{after_rmi}");
    assert_eq!(image_id(&ctl, "cached:1"), id1);

    // A changed COPY source invalidates that step and everything after it.
    ctx.write("hello.txt", "hello, changed\n");
    let changed = build_ok(&ctl, &ctx, &["--explain-cache", "-t", "cached:2"]);
    assert_eq!(changed.matches("Using cache").count(), 2, "{changed}");
    let copy_step = changed.split("Step 4/8").nth(1).unwrap();
    assert!(
        copy_step
            .lines()
            .nth(1)
            .unwrap()
            .contains("Cache miss: source: hello.txt changed (content or metadata)"),
        "{changed}"
    );
    assert!(changed.contains("Cache miss: parent changed:"), "{changed}");
    assert_ne!(image_id(&ctl, "cached:2"), id1);
    let m = MountedImage::new(&ctl, "cached:2");
    assert_eq!(m.read("/data/hello.txt").unwrap(), "hello, changed\n");
    assert_eq!(m.read("/app/out.txt").unwrap(), "hi plain\n");
    drop(m);

    // A build arg is part of the key from its ARG on; --explain-cache names it.
    let flavored = build_ok(
        &ctl,
        &ctx,
        &[
            "--explain-cache",
            "--build-arg",
            "FLAVOR=spicy",
            "-t",
            "cached:3",
        ],
    );
    assert!(
        flavored.contains("Cache miss: ARG/ENV: variable FLAVOR added")
            || flavored.contains("Cache miss: ARG/ENV: FLAVOR changed: \"plain\" -> \"spicy\""),
        "{flavored}"
    );
    let m = MountedImage::new(&ctl, "cached:3");
    assert_eq!(m.read("/app/out.txt").unwrap(), "hi spicy\n");
    drop(m);
    let hist = ctl.ok(&["history", "--no-trunc", "cached:3"]);
    assert!(
        hist.contains("|1 FLAVOR=spicy /bin/sh -c echo \"$GREETING $FLAVOR\" > out.txt"),
        "{hist}"
    );

    // An edited instruction: the miss names the old and new text.
    ctx.dockerfile(
        "FROM busybox\nARG FLAVOR=plain\nRUN echo first > /first\nCOPY hello.txt /data/\nENV GREETING=hi\nWORKDIR /app\nRUN echo \"$GREETING $FLAVOR!\" > out.txt\nCMD [\"sh\"]\n",
    );
    let edited = build_ok(&ctl, &ctx, &["--explain-cache", "-t", "cached:edit"]);
    assert!(
        edited.contains(
            "Cache miss: instruction changed: was \"RUN echo \\\"$GREETING $FLAVOR\\\" > out.txt\", now \"RUN echo \\\"$GREETING $FLAVOR!\\\" > out.txt\""
        ),
        "{edited}"
    );
    assert_eq!(edited.matches("Using cache").count(), 5, "{edited}");
    ctl.ok(&["rmi", "cached:edit"]);
    ctx.dockerfile(
        "FROM busybox\nARG FLAVOR=plain\nRUN echo first > /first\nCOPY hello.txt /data/\nENV GREETING=hi\nWORKDIR /app\nRUN echo \"$GREETING $FLAVOR\" > out.txt\nCMD [\"sh\"]\n",
    );

    // --no-cache runs every step again.
    let fresh = build_ok(&ctl, &ctx, &["--no-cache", "-t", "cached:4"]);
    assert!(!fresh.contains("Using cache"), "{fresh}");
    assert_eq!(fresh.matches("Running in").count(), 2, "{fresh}");

    // -q prints only the ID (the RUN output is discarded too).
    let quiet = build_ok(&ctl, &ctx, &["-q", "--no-cache", "-t", "cached:5"]);
    assert_eq!(quiet.trim(), image_id(&ctl, "cached:5"));
    assert!(mounts_under(&ctl.root).is_empty());

    // builder prune forgets the cache and frees the layers only it kept.
    for t in ["cached:1", "cached:2", "cached:3", "cached:4"] {
        ctl.ok(&["rmi", t]);
    }
    let layers_before = ctl.layers().len();
    let pruned = ctl.ok(&["builder", "prune"]);
    assert!(pruned.contains("Deleted build cache records:"), "{pruned}");
    assert!(ctl.layers().len() < layers_before, "{pruned}");
    ctl.assert_blobs_intact();
    let m = MountedImage::new(&ctl, "cached:5");
    assert_eq!(m.read("/app/out.txt").unwrap(), "hi plain\n");
    drop(m);
    let rebuilt = build_ok(&ctl, &ctx, &["-t", "cached:6"]);
    assert!(!rebuilt.contains("Using cache"), "{rebuilt}");
}

#[test]
fn multi_stage_copy_from_and_target() {
    let ctl = setup();
    let ctx = BuildContext::new();
    ctx.write("src.txt", "source\n");
    ctx.dockerfile(
        "ARG BASE=busybox\nFROM --platform=$BUILDPLATFORM $BASE AS builder\nARG TARGETOS\nCOPY src.txt /work/\nRUN echo $TARGETOS > /work/os\nRUN sed 's/source/built/' /work/src.txt > /work/out.txt && mkdir -p /work/dir/sub && echo deep > /work/dir/sub/f\n\nFROM builder AS tester\nRUN echo tested > /work/tested\n\nFROM busybox AS unused\nRUN exit 7\n\nFROM busybox\nCOPY --from=builder /work/out.txt /usr/share/\nCOPY --from=0 /work/dir /copied/\nCOPY --from=tester /work/tested /tested\nCOPY --from=busybox /etc/passwd /from-image-passwd\n",
    );
    let out = build_ok(&ctl, &ctx, &["-t", "multi:1"]);
    assert!(
        !out.contains("exit 7"),
        "the unused stage is skipped: {out}"
    );
    let m = MountedImage::new(&ctl, "multi:1");
    assert_eq!(m.read("/usr/share/out.txt").unwrap(), "built\n");
    assert_eq!(m.read("/copied/sub/f").unwrap(), "deep\n");
    assert_eq!(m.read("/tested").unwrap(), "tested\n");
    assert!(m.read("/from-image-passwd").unwrap().starts_with("root:"));
    assert!(
        m.meta("/work").is_none(),
        "only the copied files reach the final stage"
    );
    drop(m);

    // --target stops at a stage and tags it.
    let out = build_ok(&ctl, &ctx, &["--target", "builder", "-t", "multi:builder"]);
    assert!(out.contains("Using cache"), "{out}");
    assert!(!out.contains("tester"), "{out}");
    let m = MountedImage::new(&ctl, "multi:builder");
    assert_eq!(m.read("/work/out.txt").unwrap(), "built\n");
    assert_eq!(m.read("/work/os").unwrap(), "linux\n");
    assert!(m.meta("/work/tested").is_none());
    drop(m);
    let r = build(&ctl, &ctx, &["--target", "nope", "-t", "multi:x"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("target stage \"nope\" could not be found"),
        "{r:?}"
    );
}

#[test]
fn failures_tag_nothing() {
    let ctl = setup();
    let ctx = BuildContext::new();
    ctx.write("Dockerfile.parse", "FROM busybox\nRUN true\nCOPY onlyone\n");
    let file = ctx.path().join("Dockerfile.parse");
    let r = build(
        &ctl,
        &ctx,
        &["-f", file.to_str().unwrap(), "-t", "broken:1"],
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("line 3"), "{r:?}");
    assert!(r.stderr.contains("COPY onlyone"), "{r:?}");
    assert_eq!(r.stderr.matches("line 3").count(), 1, "said once: {r:?}");

    ctx.dockerfile("FROM busybox\nRUN echo before-failure\nRUN exit 3\nRUN echo never\n");
    let r = build(&ctl, &ctx, &["-t", "broken:2"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.contains("before-failure"), "{r:?}");
    assert!(!r.stdout.contains("Step 4/4"), "{r:?}");
    assert!(
        r.stderr
            .contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
        "{r:?}"
    );

    ctx.dockerfile("FROM busybox\nRUN false\n");
    let r = build(&ctl, &ctx, &["-t", "broken:3"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("The command '/bin/sh -c false' returned a non-zero code: 1"),
        "{r:?}"
    );

    ctx.dockerfile("FROM nosuchbase\nRUN true\n");
    let r = build(&ctl, &ctx, &["-t", "broken:4"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("line 1") && r.stderr.contains("nosuchbase"),
        "{r:?}"
    );

    ctx.dockerfile("FROM busybox\nCOPY missing.txt /\n");
    let r = build(&ctl, &ctx, &["-t", "broken:5"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("missing.txt"),
        "{r:?}"
    );

    ctx.dockerfile("FROM --platform=linux/s390x busybox\nRUN true\n");
    let r = build(&ctl, &ctx, &["-t", "broken:7"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("only the host platform"), "{r:?}");

    ctx.write("a.txt", "a").write("b.txt", "b");
    ctx.dockerfile("FROM busybox\nCOPY a.txt b.txt /dest\n");
    let r = build(&ctl, &ctx, &["-t", "broken:8"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("line 2")
            && r.stderr
                .contains("the destination must be a directory and end with a /"),
        "{r:?}"
    );

    ctx.dockerfile("FROM busybox\nUSER ghost\nRUN true\n");
    let r = build(&ctl, &ctx, &["-t", "broken:6"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("ghost"), "{r:?}");

    let images = ctl.ok(&["images"]);
    assert!(!images.contains("broken"), "{images}");
    assert!(mounts_under(&ctl.root).is_empty());
    assert!(ctl.tmp_entries().is_empty(), "{:?}", ctl.tmp_entries());
}

#[test]
fn dockerignore_build_args_and_add_url() {
    let ctl = setup();
    let ctx = BuildContext::new();
    ctx.write("app/main.txt", "main\n")
        .write("app/logs/a.log", "noise\n")
        .write("app/logs/keep.log", "keep\n")
        .write("app/secret/key", "k\n")
        .write("secret.env", "x\n")
        .write(
            ".dockerignore",
            "**/*.log\n!app/logs/keep.log\napp/secret\nsecret.env\n",
        );

    // A one-shot HTTP server for ADD URL, on a free port of 127.0.0.1.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let body = "downloaded\n";
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    ctx.dockerfile(&format!(
        "FROM busybox\nARG DEST=/default\nARG UNSET\nCOPY app $DEST/\nADD http://127.0.0.1:{port}/files/remote.txt /dl/\nRUN echo \"unset=[$UNSET]\" > /args.txt\n"
    ));
    let r = build(
        &ctl,
        &ctx,
        &[
            "--build-arg",
            "DEST=/chosen",
            "--build-arg",
            "NOTUSED=1",
            "-t",
            "ign:1",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("[NOTUSED] were not consumed"), "{r:?}");
    server.join().unwrap();
    let m = MountedImage::new(&ctl, "ign:1");
    assert_eq!(m.read("/chosen/main.txt").unwrap(), "main\n");
    assert_eq!(m.read("/chosen/logs/keep.log").unwrap(), "keep\n");
    assert!(m.meta("/chosen/logs/a.log").is_none());
    assert!(m.meta("/chosen/secret").is_none());
    assert!(m.meta("/default").is_none());
    assert_eq!(m.read("/dl/remote.txt").unwrap(), "downloaded\n");
    assert_eq!(m.meta("/dl/remote.txt").unwrap().mode() & 0o777, 0o600);
    assert_eq!(m.read("/args.txt").unwrap(), "unset=[]\n");
    drop(m);

    // Changing only ignored files keeps the COPY cached. (The URL step after it
    // fetches again, and its server is gone, so that build fails there.)
    ctx.write("app/logs/a.log", "more noise\n")
        .write("app/secret/key", "changed\n")
        .write("secret.env", "y\n");
    let again = build(&ctl, &ctx, &["--build-arg", "DEST=/chosen", "-t", "ign:2"]);
    let copy_step = again.stdout.split("Step 4/6").nth(1).unwrap_or_default();
    assert!(
        copy_step
            .lines()
            .nth(1)
            .unwrap_or_default()
            .contains("Using cache"),
        "{again:?}"
    );
    assert!(mounts_under(&ctl.root).is_empty());
}

#[test]
fn symlinked_sources_and_run_flags() {
    let ctl = setup();
    let ctx = BuildContext::new();
    ctx.write("real.txt", "real\n").write("dir/target", "t\n");
    std::os::unix::fs::symlink("real.txt", ctx.path().join("link.txt")).unwrap();
    std::os::unix::fs::symlink("target", ctx.path().join("dir/inner")).unwrap();
    std::fs::hard_link(ctx.path().join("dir/target"), ctx.path().join("dir/hard")).unwrap();
    // A tree copied onto `/` whose directories exist below, one of them as a
    // symlink (as /lib is on merged-/usr systems): files land where the symlink
    // points, the symlink and the existing files stay.
    ctx.write("tree/lib2/x.so", "x\n")
        .write("tree/etc/conf.d/new", "new\n")
        .write("tree/etc/motd", "motd\n");
    tar_into(&ctx, "libs.tar.gz", "-z", &[("y.so", "y\n")]);
    ctx.dockerfile(
        "FROM busybox\nRUN mkdir -p /usr/lib /etc/conf.d && ln -s usr/lib /lib2 && echo old > /etc/conf.d/keep\nCOPY tree/ /\nADD libs.tar.gz /lib2/\nCOPY link.txt /followed.txt\nCOPY dir/ /d/\nRUN --network=none grep -c : /proc/net/dev > /ifaces\nRUN --network=host true\n",
    );
    build_ok(&ctl, &ctx, &["-t", "links:1"]);
    let m = MountedImage::new(&ctl, "links:1");
    assert!(m.meta("/lib2").unwrap().file_type().is_symlink());
    assert_eq!(m.read("/usr/lib/x.so").unwrap(), "x\n");
    assert_eq!(m.read("/usr/lib/y.so").unwrap(), "y\n");
    assert_eq!(m.read("/etc/conf.d/keep").unwrap(), "old\n");
    assert_eq!(m.read("/etc/conf.d/new").unwrap(), "new\n");
    assert_eq!(m.read("/etc/motd").unwrap(), "motd\n");
    assert!(m.read("/etc/passwd").unwrap().starts_with("root:"));
    assert!(m.meta("/bin/busybox").is_some());
    // A source named directly is followed; a symlink inside a directory is kept.
    assert_eq!(m.read("/followed.txt").unwrap(), "real\n");
    assert!(m.meta("/followed.txt").unwrap().file_type().is_file());
    assert!(m.meta("/d/inner").unwrap().file_type().is_symlink());
    // Hard links stay hard links.
    let (a, b) = (m.meta("/d/target").unwrap(), m.meta("/d/hard").unwrap());
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    assert_eq!(
        std::fs::read_link(m.path("/d/inner")).unwrap(),
        std::path::PathBuf::from("target")
    );
    // --network=none: only loopback.
    assert_eq!(m.read("/ifaces").unwrap(), "1\n");
    drop(m);

    // The Dockerfile can come from stdin.
    let mut child = ctl
        .command()
        .args(["build", "-f", "-", "-t", "stdin:1"])
        .arg(ctx.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"FROM busybox\nCOPY real.txt /from-stdin.txt\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let m = MountedImage::new(&ctl, "stdin:1");
    assert_eq!(m.read("/from-stdin.txt").unwrap(), "real\n");
    drop(m);

    // Flags the builder cannot honour are refused, not ignored.
    ctx.dockerfile("FROM busybox\nRUN --mount=type=cache,target=/c true\n");
    let r = build(&ctl, &ctx, &["-t", "links:2"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("--mount=type=cache,target=/c"),
        "{r:?}"
    );
}

#[test]
fn run_sees_the_hosts_resolver_and_its_layer_holds_only_its_changes() {
    // A base without /proc, /sys, /dev or /etc/hosts: the RUN container needs them as
    // mount points, and none may land in the step's layer.
    let ctl = Imagectl::new();
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::create_dir(rootfs.path().join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.path().join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.path().join("bin/sh")).unwrap();
    let r = ctl.run(&["import", rootfs.path().to_str().unwrap(), "bare:1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let ctx = BuildContext::new();
    ctx.dockerfile(
        "FROM bare:1\nRUN /bin/busybox cat /etc/resolv.conf /etc/hosts > /seen && /bin/busybox hostname >> /seen\n",
    );
    build_ok(&ctl, &ctx, &["-t", "t:1"]);
    let (names, _) = ctl.top_layer_listing("t:1");
    let names: Vec<&str> = names
        .iter()
        .map(|n| n.trim_start_matches("./"))
        .filter(|n| !n.is_empty() && *n != ".")
        .collect();
    assert_eq!(names, vec!["seen"], "the RUN layer");
    let m = MountedImage::new(&ctl, "t:1");
    let seen = m.read("/seen").unwrap();
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert!(seen.starts_with(&resolv), "{seen:?}");
    assert!(seen.contains("localhost"), "{seen:?}");
    assert!(
        seen.trim_end().ends_with(|c: char| c.is_ascii_hexdigit()),
        "{seen:?}"
    );
}
