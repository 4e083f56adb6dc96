//! Tests against the reference builder's behaviour: substitution and word-splitting
//! tables (cases from buildkit's `shell` test data), dumps, typed instructions and the
//! error cases.

use std::collections::BTreeMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `None` = error. Environment: PWD=/home SHELL=bash KOREAN=한국어 NULL= (as in
/// buildkit's envVarTest, Unix rows).
const ENV_VAR_CASES: &[(&str, Option<&str>)] = &[
    ("hello", Some("hello")),
    ("he'll'o", Some("hello")),
    ("he'llo", None),
    ("he\\'llo", Some("he'llo")),
    ("he\\\\'llo", None),
    ("abc\\tdef", Some("abctdef")),
    ("\"abc\\tdef\"", Some("abc\\tdef")),
    ("\"abc\\\\tdef\"", Some("abc\\tdef")),
    ("'abc\\tdef'", Some("abc\\tdef")),
    ("hello\\", Some("hello")),
    ("hello\\\\", Some("hello\\")),
    ("\"hello", None),
    ("\"hello\\\"", None),
    ("\"hel'lo\"", Some("hel'lo")),
    ("'hello", None),
    ("'hello\\'", Some("hello\\")),
    ("'hello\\there'", Some("hello\\there")),
    ("'hello\\\\there'", Some("hello\\\\there")),
    ("\"''\"", Some("''")),
    ("$.", Some("$.")),
    ("$1", Some("")),
    ("he$1x", Some("hex")),
    ("he$.x", Some("he$.x")),
    ("he$pwd.", Some("he.")),
    ("he$PWD", Some("he/home")),
    ("he\\$PWD", Some("he$PWD")),
    ("he\\\\$PWD", Some("he\\/home")),
    ("\"he\\$PWD\"", Some("he$PWD")),
    ("\"he\\\\$PWD\"", Some("he\\/home")),
    ("\\${}", Some("${}")),
    ("\\${}aaa", Some("${}aaa")),
    ("he\\${}", Some("he${}")),
    ("he\\${}xx", Some("he${}xx")),
    ("${}", None),
    ("${}aaa", None),
    ("he${}", None),
    ("he${}xx", None),
    ("he${hi}", Some("he")),
    ("he${hi}xx", Some("hexx")),
    ("he${PWD}", Some("he/home")),
    ("he${.}", None),
    ("he${XXX:-000}xx", Some("he000xx")),
    ("he${PWD:-000}xx", Some("he/homexx")),
    ("he${XXX:-$PWD}xx", Some("he/homexx")),
    ("he${XXX:-${PWD:-yyy}}xx", Some("he/homexx")),
    ("he${XXX:-${YYY:-yyy}}xx", Some("heyyyxx")),
    ("he${XXX:YYY}", None),
    ("he${NULL:-000}xx", Some("he000xx")),
    ("he${NULL-000}xx", Some("hexx")),
    ("he${XXX-000}xx", Some("he000xx")),
    ("he${XXX:+${PWD}}xx", Some("hexx")),
    ("he${PWD:+${XXX}}xx", Some("hexx")),
    ("he${PWD:+${SHELL}}xx", Some("hebashxx")),
    ("he${XXX:+000}xx", Some("hexx")),
    ("he${PWD:+000}xx", Some("he000xx")),
    ("he${NULL:+000}xx", Some("hexx")),
    ("he${NULL+000}xx", Some("he000xx")),
    ("'he${XX}'", Some("he${XX}")),
    ("\"he${PWD}\"", Some("he/home")),
    ("\"he'$PWD'\"", Some("he'/home'")),
    ("\"$PWD\"", Some("/home")),
    ("'$PWD'", Some("$PWD")),
    ("'\\$PWD'", Some("\\$PWD")),
    ("'\"hello\"'", Some("\"hello\"")),
    ("'he\\$PWD'", Some("he\\$PWD")),
    ("he${PWD", None),
    ("he${PWD:=000}xx", None),
    ("he${PWD:+${PWD}:}xx", Some("he/home:xx")),
    ("he${XXX:-\\$PWD:}xx", Some("he$PWD:xx")),
    ("he${XXX:-\\${PWD}z}xx", Some("he${PWDz}xx")),
    ("안녕하세요", Some("안녕하세요")),
    ("안'녕'하세요", Some("안녕하세요")),
    ("안'녕하세요", None),
    ("안녕\\'하세요", Some("안녕'하세요")),
    ("안녕\\t하세요", Some("안녕t하세요")),
    ("\"안녕\\t하세요\"", Some("안녕\\t하세요")),
    ("안녕$1x", Some("안녕x")),
    ("안녕${XXX:-${YYY:-yyy}}xx", Some("안녕yyyxx")),
    ("$KOREAN", Some("한국어")),
    ("안녕$KOREAN", Some("안녕한국어")),
    ("${{aaa}", None),
    ("${aaa}}", Some("}")),
    ("${aaa", None),
    ("${{aaa:-bbb}", None),
    ("${aaa:-bbb}}", Some("bbb}")),
    ("${aaa:-bbb", None),
    ("${aaa:-bbb}", Some("bbb")),
    ("${aaa:-${bbb:-ccc}}", Some("ccc")),
    ("${aaa:-bbb ${foo}", None),
    ("${aaa:-bbb {foo}", Some("bbb {foo")),
    ("${:}", None),
    ("${:-bbb}", None),
    ("${:+bbb}", None),
    ("${PWD?}", Some("/home")),
    ("${NULL?}", Some("")),
    ("${NULL:?}", None),
    ("${XXX?}", None),
    ("${XXX:?must be set}", None),
];

#[test]
fn substitution_table() {
    let e = env(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]);
    for (input, want) in ENV_VAR_CASES {
        let got = expand(input, &e);
        match want {
            Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
            None => assert!(got.is_err(), "input {input:?} should fail, got {got:?}"),
        }
    }
}

#[test]
fn substitution_errors_are_clear() {
    let e = env(&[("NULL", "")]);
    let err = expand("${XXX:?must be set}", &e).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to process \"${XXX:?must be set}\": XXX: must be set"
    );
    let err = expand("${NULL:?}", &e).unwrap_err();
    assert!(
        err.message.contains("NULL: is not allowed to be empty"),
        "{err}"
    );
    let err = expand("${XXX?}", &e).unwrap_err();
    assert!(
        err.message.contains("XXX: is not allowed to be unset"),
        "{err}"
    );
    let err = expand("${VAR:?message here$ARG}", &env(&[("ARG", "x")])).unwrap_err();
    assert!(err.message.contains("message herex"), "{err}");
}

/// buildkit's ProcessWithMatches cases: modifiers, patterns, matched/unmatched names.
#[test]
fn modifiers_and_patterns() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>);
    let cases: &[Case] = &[
        ("x ${UNUSED}", &[("DUMMY", "dummy")], Some("x ")),
        (
            "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("xxx  ccc"),
        ),
        (
            "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("xxx bbb ccc"),
        ),
        (
            "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("aaa bbb "),
        ),
        (
            "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
            &[("FOO", "xxx"), ("BAR", "")],
            Some("aaa  "),
        ),
        ("${FOO?aaa}", &[("FOO", "xxx")], Some("xxx")),
        ("${BAR?bbb}", &[("BAR", "")], Some("")),
        ("${BAZ?ccc}", &[], None),
        ("${BAR:?bbb}", &[("BAR", "")], None),
        ("${FOO=aaa}", &[("FOO", "xxx")], None),
        ("${FOO=:aaa}", &[("FOO", "xxx")], None),
        (
            "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
            &[("FOO", "()[]{}^$.*?|\\x")],
            Some("x"),
        ),
        ("${FOO%%\\**}", &[("FOO", "xx**")], Some("xx")),
        ("${FOO#*x*y}", &[("FOO", "xxyy")], Some("y")),
        ("${FOO#*}", &[("FOO", "xxyy")], Some("xxyy")),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], Some("xyy")),
        ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Some("xxyy")),
        ("${FOO#}", &[("FOO", "xxyy")], Some("xxyy")),
        ("${FOO##*x}", &[("FOO", "xxyy")], Some("yy")),
        ("${FOO##}", &[("FOO", "xxyy")], Some("xxyy")),
        ("${FOO#?\\?}", &[("FOO", "???y")], Some("?y")),
        (
            "${ABC:-.}${FOO%x}${ABC:-.}",
            &[("FOO", "xxyy")],
            Some(".xxyy."),
        ),
        ("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], Some("a")),
        ("${FOO%}", &[("FOO", "xxyy")], Some("xxyy")),
        (
            "${FOO%%$BAR}",
            &[("FOO", "xxyy"), ("BAR", "")],
            Some("xxyy"),
        ),
        ("${FOO%.*}", &[("FOO", "a.tar.gz")], Some("a.tar")),
        ("${FOO%%.*}", &[("FOO", "a.tar.gz")], Some("a")),
        (
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
            Some("/foo.*/*.txt - /foo..*.txt"),
        ),
        (
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
            Some("/tmp/bar.txt - /bar.txt"),
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
            &[
                ("FOO", "/a/foo/b/c.txt"),
                ("NEEDLE", "/?/"),
                ("REPLACEMENT", "/"),
            ],
            Some("/foo/b/c.txt - /foo/c.txt"),
        ),
        (
            "${FOO/$NEEDLE/$REPLACEMENT}",
            &[
                ("FOO", "http://google.de"),
                ("NEEDLE", "http://"),
                ("REPLACEMENT", "https://"),
            ],
            Some("https://google.de"),
        ),
        (
            "${FOO//\\//\\/}",
            &[("FOO", "/tmp/foo.txt")],
            Some("\\/tmp\\/foo.txt"),
        ),
        (
            "${FOO/$BAR/ww}",
            &[("FOO", "xxyy"), ("BAR", "")],
            Some("wwxxyy"),
        ),
        ("${FOO//ww}", &[("FOO", "xxyy")], None),
        ("${FOO//}", &[("FOO", "xxyy")], None),
        ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy")),
        ("${FOO///}", &[], Some("")),
        (
            "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
            &[
                ("VERSION", "v1.2.3"),
                ("TARGETOS", "linux"),
                ("TARGETARCH", "arm"),
                ("TARGETVARIANT", "v7"),
            ],
            Some("something-v1.2.3.linux-arm-v7.tar.gz"),
        ),
    ];
    for (input, vars, want) in cases {
        let got = expand(input, &env(vars));
        match want {
            Some(w) => assert_eq!(got.as_deref(), Ok(*w), "input {input:?}"),
            None => assert!(got.is_err(), "input {input:?} should fail, got {got:?}"),
        }
    }
    let p = Lexer::default()
        .process(
            "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
            &env(&[("FOO", "xxx"), ("BAR", "")]),
        )
        .unwrap();
    assert_eq!(p.matched.iter().collect::<Vec<_>>(), ["BAR", "FOO"]);
    assert_eq!(p.unmatched.iter().collect::<Vec<_>>(), ["BAZ"]);
}

/// Word splitting (buildkit's wordsTest): `ENV` lines add to the environment, `|`
/// separates input and the comma-separated expected words.
const WORDS_CASES: &str = r#"hello | hello
hello${hi}bye | hellobye
ENV hi=hi
hello${hi}bye | hellohibye
ENV space=abc  def
hello${space}bye | helloabc,defbye
hello"${space}"bye | helloabc  defbye
hello "${space}"bye | hello,abc  defbye
ENV leading=  ab c
hello${leading}def | hello,ab,cdef
hello"${leading}" def | hello  ab c,def
hello"${leading}" | hello  ab c
hello${leading} | hello,ab,c
ENV trailing=ab c   
hello${trailing} | helloab,c
hello${trailing}d | helloab,c,d
hello"${trailing}"d | helloab c   d
hel"lo${trailing}" | helloab c   
hello" there  " | hello there  
hello there     | hello,there
hello\ there | hello there
hello" there | error
hello\" there | hello",there
hello"\\there" | hello\there
hello"\there" | hello\there
hello'\\there' | hello\\there
hello'\there' | hello\there
hello'$there' | hello$there
"" a | a
a "" | a
"" | "#;

#[test]
fn word_splitting_table() {
    let mut vars: Vec<String> = Vec::new();
    for line in WORDS_CASES.lines() {
        if let Some(e) = line.strip_prefix("ENV ") {
            vars.push(e.trim_start().to_string());
            continue;
        }
        let (input, want) = line.split_once('|').expect("one | per line");
        let input = input.trim();
        let want = want.trim_start_matches(' ');
        let got = match expand_words(input, &vars) {
            Ok(w) => w.join(","),
            Err(_) => "error".to_string(),
        };
        assert_eq!(got, want, "input {input:?}");
    }
}

#[test]
fn escape_character_and_raw_heredoc_expansion() {
    let lex = Lexer::new('`');
    let e = env(&[("b", "B")]);
    assert_eq!(lex.expand("a`$b\\c$b", &e).unwrap(), "a$b\\cB");
    assert_eq!(lex.expand("\"x`\"y\"", &e).unwrap(), "x\"y");
    let raw = Lexer::default()
        .expand_raw("echo \"$b\" '$b' \\$b\n", &e)
        .unwrap();
    assert_eq!(raw, "echo \"B\" 'B' $b\n");
}

const FULL: &str = r#"# syntax=docker/dockerfile:1
# escape=\
ARG BASE=busybox
FROM --platform=linux/amd64 ${BASE} AS build
ENV A=1 B="two words" \
    C=3
ENV LEGACY value with spaces
LABEL org.example="x y" other=z
MAINTAINER Jane Doe <jane@example.com>
RUN echo "hello" && \
    echo world   # not a comment
RUN ["/bin/echo", "exec form"]
CMD ['not', 'json']
ENTRYPOINT ["/bin/sh", "-c"]
EXPOSE 80 53/udp
VOLUME ["/data", "/logs"]
VOLUME /a /b
USER 1000:1000
WORKDIR /app
COPY --from=build --chown=1:2 --chmod=0644 a b /dst/
ADD --chown=app file.tar.gz /opt/
SHELL ["/bin/sh", "-ec"]
STOPSIGNAL SIGTERM
HEALTHCHECK NONE
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --start-interval=1s --retries=3 CMD wget -q localhost || exit 1
onbuild RUN echo triggered
ONBUILD COPY --from=build x y
FROM scratch
COPY --from=build /a /a
"#;

const FULL_DUMP: &str = r#"(arg "BASE=busybox")
(from ["--platform=linux/amd64"] "${BASE}" "AS" "build")
(env "A" "1" "=" "B" "\"two words\"" "=" "C" "3" "=")
(env "LEGACY" "value with spaces" "")
(label "org.example" "\"x y\"" "=" "other" "z" "=")
(maintainer "Jane Doe <jane@example.com>")
(run "echo \"hello\" &&     echo world   # not a comment")
(run "/bin/echo" "exec form")
(cmd "['not', 'json']")
(entrypoint "/bin/sh" "-c")
(expose "80" "53/udp")
(volume "/data" "/logs")
(volume "/a" "/b")
(user "1000:1000")
(workdir "/app")
(copy ["--from=build" "--chown=1:2" "--chmod=0644"] "a" "b" "/dst/")
(add ["--chown=app"] "file.tar.gz" "/opt/")
(shell "/bin/sh" "-ec")
(stopsignal "SIGTERM")
(healthcheck "NONE")
(healthcheck ["--interval=30s" "--timeout=3s" "--start-period=5s" "--start-interval=1s" "--retries=3"] "CMD" "wget -q localhost || exit 1")
(onbuild (run "echo triggered"))
(onbuild (copy ["--from=build"] "x" "y"))
(from "scratch")
(copy ["--from=build"] "/a" "/a")
"#;

#[test]
fn dump_of_every_instruction() {
    let df = parse(FULL).unwrap();
    assert_eq!(df.dump(), FULL_DUMP);
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.global_args.len(), 1);
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].name(), Some("build"));
    assert_eq!(df.stages[0].instructions.len(), 21);
    assert_eq!(df.stage_index("BUILD"), Some(0));
    assert_eq!(df.stage_index("1"), Some(1));
    assert_eq!(df.stage_index("nope"), None);
}

#[test]
fn typed_instructions() {
    let df = parse(FULL).unwrap();
    let s = &df.stages[0];
    assert_eq!(
        s.from,
        From {
            image: "${BASE}".into(),
            platform: Some("linux/amd64".into()),
            name: Some("build".into())
        }
    );
    let ins: Vec<&Instruction> = s.instructions.iter().map(|l| &l.instruction).collect();
    assert_eq!(
        *ins[0],
        Instruction::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into()),
            ("C".into(), "3".into())
        ])
    );
    assert_eq!(s.instructions[0].start_line, 5);
    assert_eq!(s.instructions[0].end_line, 6);
    assert_eq!(
        *ins[1],
        Instruction::Env(vec![("LEGACY".into(), "value with spaces".into())])
    );
    assert_eq!(
        *ins[6],
        Instruction::Cmd(CommandLine::Shell("['not', 'json']".into()))
    );
    assert_eq!(
        *ins[7],
        Instruction::Entrypoint(CommandLine::Exec(vec!["/bin/sh".into(), "-c".into()]))
    );
    assert_eq!(
        *ins[8],
        Instruction::Expose(vec!["53/udp".into(), "80".into()])
    );
    let Instruction::Copy(c) = ins[13] else {
        panic!("{:?}", ins[13])
    };
    assert_eq!(c.sources, ["a", "b"]);
    assert_eq!(c.dest, "/dst/");
    assert_eq!(c.from.as_deref(), Some("build"));
    assert_eq!(c.chown.as_deref(), Some("1:2"));
    assert_eq!(c.chmod.as_deref(), Some("0644"));
    let Instruction::Healthcheck(h) = ins[18] else {
        panic!()
    };
    assert_eq!(
        *h,
        Healthcheck::Cmd {
            test: CommandLine::Shell("wget -q localhost || exit 1".into()),
            interval: Some(std::time::Duration::from_secs(30)),
            timeout: Some(std::time::Duration::from_secs(3)),
            start_period: Some(std::time::Duration::from_secs(5)),
            start_interval: Some(std::time::Duration::from_secs(1)),
            retries: Some(3),
        }
    );
    assert_eq!(h.test(), ["CMD-SHELL", "wget -q localhost || exit 1"]);
    let Instruction::Onbuild(o) = ins[19] else {
        panic!()
    };
    assert_eq!(o.expression, "RUN echo triggered");
    assert!(matches!(*o.trigger, Instruction::Run(_)));
    assert_eq!(s.instructions[19].source, "onbuild RUN echo triggered");
    assert_eq!(
        CommandLine::Shell("echo hi".into()).argv(&["/bin/sh".into(), "-c".into()]),
        ["/bin/sh", "-c", "echo hi"]
    );
}

#[test]
fn expansion_follows_the_reference_rules() {
    let df = parse(
        "ARG V=1\nFROM busybox:${V}\nARG V\nENV a=new b=$a c=\"${a} x\"\nEXPOSE $PORTS\nCOPY --chown=$U \"$SRC\" ${DST}/\nRUN echo $a\nWORKDIR ~/$a\n",
    )
    .unwrap();
    let lex = df.lexer();
    let from = df.stages[0].from.expand(&lex, &env(&[("V", "1")])).unwrap();
    assert_eq!(from.image, "busybox:1");
    let ins = &df.stages[0].instructions;
    assert_eq!(
        ins[0].instruction,
        Instruction::Arg(vec![ArgDecl {
            name: "V".into(),
            default: None
        }])
    );
    let e = env(&[
        ("a", "old"),
        ("PORTS", "80 443/udp"),
        ("U", "app"),
        ("SRC", "a b"),
        ("DST", "/d"),
    ]);
    assert_eq!(
        ins[1].instruction.expand(&lex, &e).unwrap(),
        Instruction::Env(vec![
            ("a".into(), "new".into()),
            ("b".into(), "old".into()),
            ("c".into(), "old x".into())
        ])
    );
    assert_eq!(
        ins[2].instruction.expand(&lex, &e).unwrap(),
        Instruction::Expose(vec!["80".into(), "443/udp".into()])
    );
    let Instruction::Copy(c) = ins[3].instruction.expand(&lex, &e).unwrap() else {
        panic!()
    };
    assert_eq!(
        (c.sources, c.dest, c.chown),
        (
            vec!["a b".to_string()],
            "/d/".to_string(),
            Some("app".to_string())
        )
    );
    // RUN is left to the shell
    assert_eq!(
        ins[4].instruction.expand(&lex, &e).unwrap(),
        ins[4].instruction
    );
    assert_eq!(
        ins[5].instruction.expand(&lex, &e).unwrap(),
        Instruction::Workdir("~/old".into())
    );
}

#[test]
fn escape_directive_and_continuations() {
    let text = "# escape=`\n\nFROM image\nLABEL maintainer foo@example.com\nENV GOPATH `\n\\go\n# comment\nENV GOPATH=\\go`\n  GOROOT=C:\\go\nRUN echo a`\n  b\n";
    let df = parse(text).unwrap();
    assert_eq!(df.directives.escape, '`');
    assert_eq!(
        df.dump(),
        "(from \"image\")\n(label \"maintainer\" \"foo@example.com\" \"\")\n(env \"GOPATH\" \"\\\\go\" \"\")\n(env \"GOPATH\" \"\\\\go\" \"=\" \"GOROOT\" \"C:\\\\go\" \"=\")\n(run \"echo a  b\")\n"
    );

    let text = "FROM busybox\nRUN echo one \\\n# a comment inside\n    two \\\n\n    three\nRUN echo \\\\\n  # indented comment line\nRUN echo last \\";
    let df = parse(text).unwrap();
    assert_eq!(
        df.dump(),
        "(from \"busybox\")\n(run \"echo one     two     three\")\n(run \"echo \\\\\\\\\")\n(run \"echo last\")\n"
    );
    assert_eq!(df.warnings.len(), 1, "{:?}", df.warnings);
    let lines: Vec<(usize, usize)> = df
        .nodes()
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(lines, [(1, 1), (2, 6), (7, 7), (9, 9)]);

    // a directive after a comment, or repeated after an instruction, is a comment
    let df = parse("# hello\n# escape=`\nFROM a\n# escape=`\nRUN a\\\nb").unwrap();
    assert_eq!(df.directives.escape, '\\');
    assert_eq!(df.dump(), "(from \"a\")\n(run \"ab\")\n");
    // byte-order mark and CRLF line endings
    let df = parse("\u{feff}FROM a\r\nRUN x \\\r\n  y\r\n").unwrap();
    assert_eq!(df.dump(), "(from \"a\")\n(run \"x   y\")\n");
}

#[test]
fn reference_health_testfile() {
    let text = "FROM debian\nADD check.sh main.sh /app/\nCMD /app/main.sh\nHEALTHCHECK\nHEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n  CMD /app/check.sh --quiet\nHEALTHCHECK CMD\nHEALTHCHECK   CMD   a b\nHEALTHCHECK --timeout=3s CMD [\"foo\"]\nHEALTHCHECK CONNECT TCP 7000\nHEALTHCHECK --start-period=0s --interval=5s --timeout=0s --retries=0 CMD [\"foo\"]\n";
    let want = "(from \"debian\")\n(add \"check.sh\" \"main.sh\" \"/app/\")\n(cmd \"/app/main.sh\")\n(healthcheck)\n(healthcheck [\"--interval=5s\" \"--timeout=3s\" \"--retries=3\"] \"CMD\" \"/app/check.sh --quiet\")\n(healthcheck \"CMD\")\n(healthcheck \"CMD\" \"a b\")\n(healthcheck [\"--timeout=3s\"] \"CMD\" \"foo\")\n(healthcheck \"CONNECT\" \"TCP 7000\")\n(healthcheck [\"--start-period=0s\" \"--interval=5s\" \"--timeout=0s\" \"--retries=0\"] \"CMD\" \"foo\")\n";
    // the untyped tree accepts these; the typed layer rejects the invalid ones
    let raw = parser::parse_raw(text).unwrap();
    let dump: String = raw
        .nodes
        .iter()
        .map(|n| format!("({})\n", n.dump()))
        .collect();
    assert_eq!(dump, want);
    let err = parse(text).unwrap_err();
    assert_eq!(err.line, 4);
    assert!(
        err.message
            .contains("HEALTHCHECK requires at least one argument")
    );
}

#[test]
fn reference_influxdb_testfile() {
    let text = "FROM ubuntu:14.04\n\nRUN apt-get update && apt-get install --yes --force-yes apt-transport-https curl\nRUN /bin/bash -c 'source /etc/lsb-release && echo \"deb https://repos.influxdata.com/${DISTRIB_ID,,} ${DISTRIB_CODENAME} stable\"' | tee \"/etc/apt/sources.list.d/influxdb.list\"\n\nCMD service influxdb start\n\nEXPOSE 8086\nEXPOSE 8089/udp\n";
    let want = "(from \"ubuntu:14.04\")\n(run \"apt-get update && apt-get install --yes --force-yes apt-transport-https curl\")\n(run \"/bin/bash -c 'source /etc/lsb-release && echo \\\"deb https://repos.influxdata.com/${DISTRIB_ID,,} ${DISTRIB_CODENAME} stable\\\"' | tee \\\"/etc/apt/sources.list.d/influxdb.list\\\"\")\n(cmd \"service influxdb start\")\n(expose \"8086\")\n(expose \"8089/udp\")\n";
    assert_eq!(parse(text).unwrap().dump(), want);
}

#[test]
fn heredocs() {
    let text = "FROM busybox\nRUN <<EOF\necho hi\nEOF\nCOPY <<-EOT /etc/motd\n\thello\n\tEOT\nRUN cat <<'A' > /x && cat <<B > /y\n$HOME\nA\n$HOME\nB\nRUN [\"<<NOT\"]\nONBUILD RUN <<X\necho later\nX\nCOPY <<one <<two /dir/\n1\none\n2\ntwo\n";
    let df = parse(text).unwrap();
    assert_eq!(
        df.dump(),
        "(from \"busybox\")\n(run \"<<EOF\")\n(copy \"<<-EOT\" \"/etc/motd\")\n(run \"cat <<'A' > /x && cat <<B > /y\")\n(run \"<<NOT\")\n(onbuild (run \"<<X\"))\n(copy \"<<one\" \"<<two\" \"/dir/\")\n"
    );
    let ins = &df.stages[0].instructions;
    let lines: Vec<(usize, usize)> = ins.iter().map(|l| (l.start_line, l.end_line)).collect();
    assert_eq!(
        lines,
        [(2, 4), (5, 7), (8, 12), (13, 13), (14, 16), (17, 21)]
    );
    let Instruction::Run(r) = &ins[0].instruction else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Shell("<<EOF".into()));
    assert_eq!(r.heredocs.len(), 1);
    assert_eq!(
        (r.heredocs[0].name.as_str(), r.heredocs[0].content.as_str()),
        ("EOF", "echo hi\n")
    );
    let Instruction::Copy(c) = &ins[1].instruction else {
        panic!()
    };
    assert!(c.sources.is_empty());
    assert_eq!(
        c.inline,
        [InlineSource {
            name: "EOT".into(),
            data: "hello\n".into(),
            expand: true
        }]
    );
    let Instruction::Run(r) = &ins[2].instruction else {
        panic!()
    };
    let docs: Vec<(&str, bool, &str)> = r
        .heredocs
        .iter()
        .map(|h| (h.name.as_str(), h.expand, h.content.as_str()))
        .collect();
    assert_eq!(docs, [("A", false, "$HOME\n"), ("B", true, "$HOME\n")]);
    let Instruction::Run(r) = &ins[3].instruction else {
        panic!()
    };
    assert!(r.heredocs.is_empty());
    let Instruction::Onbuild(o) = &ins[4].instruction else {
        panic!()
    };
    assert_eq!(o.expression, "RUN <<X\necho later\nX");
    let Instruction::Run(t) = o.trigger.as_ref() else {
        panic!()
    };
    assert_eq!(t.heredocs[0].content, "echo later\n");
    let Instruction::Copy(c) = &ins[5].instruction else {
        panic!()
    };
    let names: Vec<(&str, &str)> = c
        .inline
        .iter()
        .map(|i| (i.name.as_str(), i.data.as_str()))
        .collect();
    assert_eq!(names, [("one", "1\n"), ("two", "2\n")]);
    // COPY heredoc bodies are substituted only when the delimiter is unquoted
    let e = env(&[("HOME", "/root")]);
    let Instruction::Copy(c) = parse("FROM a\nCOPY <<X <<'Y' /d/\n\"$HOME\"\nX\n$HOME\nY\n")
        .unwrap()
        .stages[0]
        .instructions[0]
        .instruction
        .expand(&Lexer::default(), &e)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(c.inline[0].data, "\"/root\"\n");
    assert_eq!(c.inline[1].data, "$HOME\n");
}

#[test]
fn triggers_parse_without_from() {
    let t = parse_triggers("RUN echo x\nCOPY a b").unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[1].instruction.keyword(), "COPY");
}

#[test]
fn error_cases() {
    let cases: &[(&str, usize, &str)] = &[
        ("FROM busybox\nFOO bar\n", 2, "unknown instruction: FOO"),
        (
            "FROM busybox\nRUNN x\n",
            2,
            "unknown instruction: RUNN (did you mean RUN?)",
        ),
        ("RUN x\n", 1, "no build stage in current context"),
        ("", 1, "file with no instructions"),
        ("# just a comment\n\n", 2, "file with no instructions"),
        (
            "FROM a\nCMD [1]\n",
            2,
            "when using JSON array syntax, arrays must be comprised of strings only",
        ),
        (
            "FROM a\nCOPY onlyone\n",
            2,
            "COPY requires at least two arguments",
        ),
        (
            "FROM a AS 1bad\n",
            1,
            "invalid name for build stage: \"1bad\"",
        ),
        (
            "FROM a b\n",
            1,
            "FROM requires either one or three arguments",
        ),
        ("FROM\n", 1, "FROM requires either one or three arguments"),
        (
            "FROM a AS x\nRUN y\nFROM b AS X\n",
            3,
            "duplicate stage name \"x\"",
        ),
        ("FROM a\nCOPY --form=x a b\n", 2, "Unknown flag: form"),
        (
            "FROM a\nCOPY --chown a b\n",
            2,
            "Missing a value on flag: chown",
        ),
        ("FROM a\nADD --from=x a b\n", 2, "Unknown flag: from"),
        ("FROM a\nENV\n", 2, "ENV requires at least one argument"),
        (
            "FROM a\nENV a=1 b\n",
            2,
            "Syntax error - can't find = in \"b\". Must be of the form: name=value",
        ),
        ("FROM a\nENV onlykey\n", 2, "ENV must have two arguments"),
        ("FROM a\nLABEL =x\n", 2, "LABEL names can not be blank"),
        ("FROM a\nARG =x\n", 2, "ARG names can not be blank"),
        (
            "FROM a\nSHELL /bin/bash -c\n",
            2,
            "SHELL requires the arguments to be in JSON form",
        ),
        (
            "FROM a\nHEALTHCHECK --interval=5 CMD true\n",
            2,
            "missing unit in duration",
        ),
        (
            "FROM a\nHEALTHCHECK --retries=-1 CMD true\n",
            2,
            "--retries cannot be negative",
        ),
        (
            "FROM a\nHEALTHCHECK FOO x\n",
            2,
            "Unknown type \"FOO\" in HEALTHCHECK (try CMD)",
        ),
        (
            "FROM a\nHEALTHCHECK CMD\n",
            2,
            "Missing command after HEALTHCHECK CMD",
        ),
        (
            "FROM a\nHEALTHCHECK NONE x\n",
            2,
            "HEALTHCHECK NONE takes no arguments",
        ),
        (
            "FROM a\nONBUILD ONBUILD RUN x\n",
            2,
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        (
            "FROM a\nONBUILD FROM b\n",
            2,
            "FROM isn't allowed as an ONBUILD trigger",
        ),
        (
            "FROM a\nONBUILD\n",
            2,
            "ONBUILD requires at least one argument",
        ),
        ("FROM a\nRUN <<EOF\necho\n", 2, "unterminated heredoc"),
        (
            "# escape=x\nFROM a\n",
            1,
            "invalid escape token 'x' does not match ` or \\",
        ),
        (
            "# escape=`\n# escape=\\\nFROM a\n",
            2,
            "only one escape parser directive can be used",
        ),
        (
            "FROM a\n\n\nWORKDIR\n",
            4,
            "WORKDIR requires exactly one argument",
        ),
        (
            "FROM a\nCOPY a <<EOF\nEOF\n",
            2,
            "COPY cannot accept a heredoc as a destination",
        ),
        (
            "FROM a\nEXPOSE\n",
            2,
            "EXPOSE requires at least one argument",
        ),
        (
            "FROM a\nVOLUME [\"\"]\n",
            2,
            "VOLUME specified can not be an empty string",
        ),
        ("FROM a\nUSER\n", 2, "USER requires exactly one argument"),
        ("FROM a\nRUN --mount\n", 2, "Missing a value on flag: mount"),
        (
            "FROM a\nCMD --x=1 y\n",
            2,
            "Unknown flag: x (CMD takes no flags)",
        ),
    ];
    for (text, line, msg) in cases {
        let err = parse(text).expect_err(text);
        assert_eq!(err.line, *line, "{text:?}: {err}");
        assert!(err.message.contains(msg), "{text:?}: got {err}");
    }
    let err = parse("FROM busybox\nFOO bar  \n").unwrap_err();
    assert_eq!(err.to_string(), "line 2: unknown instruction: FOO: FOO bar");
    let err = parse("").unwrap_err();
    assert_eq!(err.to_string(), "line 1: file with no instructions");
}

#[test]
fn run_plans_for_heredocs() {
    let df = parse(
        "FROM a\nRUN <<EOF\necho hi\nEOF\nRUN <<-S\n\t#!/bin/sh\n\techo s\nS\nRUN cat <<X > /f\nbody\nX\nRUN [\"echo\", \"x\"]\n",
    )
    .unwrap();
    let plans: Vec<RunPlan> = df.stages[0]
        .instructions
        .iter()
        .map(|l| match &l.instruction {
            Instruction::Run(r) => r.plan(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        plans,
        [
            RunPlan::Command(CommandLine::Shell("echo hi\n".into())),
            RunPlan::Script {
                name: "S".into(),
                data: "#!/bin/sh\necho s\n".into()
            },
            RunPlan::Command(CommandLine::Shell("cat <<X > /f\nbody\nX".into())),
            RunPlan::Command(CommandLine::Exec(vec!["echo".into(), "x".into()])),
        ]
    );
}

#[test]
fn global_args_for_from_lines() {
    let df = parse("ARG A=1\nARG B=${A}-b C\nARG D\nFROM img:$B\n").unwrap();
    let none = BTreeMap::new();
    let v = df.global_arg_values(&none).unwrap();
    assert_eq!(v, env(&[("A", "1"), ("B", "1-b")]));
    let v = df
        .global_arg_values(&env(&[("A", "2"), ("D", "d")]))
        .unwrap();
    assert_eq!(v, env(&[("A", "2"), ("B", "2-b"), ("D", "d")]));
    assert_eq!(
        df.stages[0].from.expand(&df.lexer(), &v).unwrap().image,
        "img:2-b"
    );
}

#[test]
fn mounts_heredocs_and_escapes_in_a_realistic_file() {
    let text = r#"# syntax=docker/dockerfile-upstream:master
ARG V=1
FROM a AS b
RUN --mount=target=. --mount=target=/root/.cache,type=cache \
  --mount=source=/tmp/x,target=/tmp/x,from=v <<EOT
  set -ex
  echo "$(cat /tmp/x)"
EOT
COPY --link --chmod=755 <<EOF /entry.sh
#!/bin/sh
exec prog \\
  -l 0.0.0.0:\${PORT:-5000} \\
  -- "\$@"
EOF
ENV PORT 5000
ARG REGISTRY_VERSION
FROM registry:$REGISTRY_VERSION as c
"#;
    let df = parse(text).unwrap();
    assert_eq!(
        df.dump(),
        r#"(arg "V=1")
(from "a" "AS" "b")
(run ["--mount=target=." "--mount=target=/root/.cache,type=cache" "--mount=source=/tmp/x,target=/tmp/x,from=v"] "<<EOT")
(copy ["--link" "--chmod=755"] "<<EOF" "/entry.sh")
(env "PORT" "5000" "")
(arg "REGISTRY_VERSION")
(from "registry:$REGISTRY_VERSION" "as" "c")
"#
    );
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[1].name(), Some("c"));
    let ins = &df.stages[0].instructions;
    let Instruction::Run(r) = &ins[0].instruction else {
        panic!()
    };
    assert_eq!(r.mounts.len(), 3);
    assert_eq!(
        r.heredocs[0].content,
        "  set -ex\n  echo \"$(cat /tmp/x)\"\n"
    );
    let copied = ins[1]
        .instruction
        .expand(&df.lexer(), &env(&[("PORT", "1")]))
        .unwrap();
    let Instruction::Copy(c) = copied else {
        panic!()
    };
    assert!(c.link);
    assert_eq!(
        c.inline[0].data,
        "#!/bin/sh\nexec prog \\\n  -l 0.0.0.0:${PORT:-5000} \\\n  -- \"$@\"\n"
    );
    // the ARG after a stage belongs to that stage, not to the globals
    assert_eq!(df.global_args.len(), 1);
    assert_eq!(ins.len(), 4);
}
