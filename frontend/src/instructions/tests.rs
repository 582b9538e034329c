//! Unit tests for `parse_instruction`.

use super::*;
use crate::parser::parse;

/// Parses a Dockerfile and types its last instruction.
fn last(source: &str) -> Result<Instruction, Error> {
    let ast = parse(source, "Dockerfile").unwrap();
    parse_instruction(ast.nodes.last().unwrap())
}

fn ok(source: &str) -> Instruction {
    last(source).unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn message(source: &str) -> String {
    last(source).unwrap_err().message().to_owned()
}

#[test]
fn from_with_platform_and_stage_name() {
    assert_eq!(
        ok("FROM --platform=$BUILDPLATFORM alpine:3 AS Build"),
        Instruction::From {
            image: "alpine:3".into(),
            platform: Some("$BUILDPLATFORM".into()),
            name: Some("build".into())
        }
    );
    assert_eq!(message("FROM a b"), "FROM requires either one or three arguments");
    assert!(message("FROM a AS 1x").starts_with("invalid name for build stage"));
}

#[test]
fn run_flags_and_forms() {
    let run = ok("FROM a\nRUN --mount=type=cache,target=/c --network=none --mount=target=/x echo hi");
    assert_eq!(
        run,
        Instruction::Run {
            cmd: Command::Shell("echo hi".into()),
            mounts: vec!["type=cache,target=/c".into(), "target=/x".into()],
            network: Some("none".into()),
            security: None,
            heredocs: vec![],
        }
    );
    assert!(matches!(ok("RUN [\"a\", \"b\"]"), Instruction::Run { cmd: Command::Exec(v), .. } if v == ["a", "b"]));
    assert_eq!(message("RUN --mont=target=/mytmp,type=tmpfs /bin/true"), "unknown flag: --mont (did you mean mount?)");
    assert_eq!(
        message("RUN --mount=from=$ttt,type=cache,target=/tmp ls"),
        "'from' doesn't support variable expansion, define alias stage instead"
    );
    assert_eq!(message("RUN --network=bridge x"), "network mode \"bridge\" not supported by buildkit");
}

#[test]
fn run_heredoc_bodies_are_chomped() {
    let Instruction::Run { heredocs, cmd, .. } = ok("RUN <<-EOF\n\techo hi\n\tEOF\n") else { panic!() };
    assert_eq!(cmd, Command::Shell("<<-EOF".into()));
    assert_eq!(heredocs[0].content, "echo hi\n");
}

#[test]
fn copy_and_add_flags_and_heredocs() {
    let Instruction::Copy(copy) = ok(
        "COPY --from=build --chown=1:2 --chmod=644 --link --parents --exclude=*.md --exclude=x a <<EOF b/\nhi\nEOF\n",
    ) else {
        panic!()
    };
    assert_eq!(copy.sources, vec!["a"]);
    assert_eq!(copy.dest, "b/");
    assert_eq!(
        (copy.from.as_deref(), copy.chown.as_deref(), copy.chmod.as_deref()),
        (Some("build"), Some("1:2"), Some("644"))
    );
    assert!(copy.link && copy.parents);
    assert_eq!(copy.exclude, vec!["*.md", "x"]);
    assert_eq!(copy.heredocs[0].name, "EOF");
    assert_eq!(copy.heredocs[0].content, "hi\n");
    let Instruction::Add(add) = ok("ADD --checksum=sha256:ab --keep-git-dir --unpack=false https://x/y.tar /") else {
        panic!()
    };
    assert_eq!((add.checksum.as_deref(), add.keep_git_dir, add.unpack), (Some("sha256:ab"), true, Some(false)));
    assert_eq!(message("ADD --from=x a b"), "unknown flag: --from");
    assert_eq!(
        message("COPY foo"),
        "COPY requires at least two arguments, but only one was provided. Destination could not be determined"
    );
    assert_eq!(message("COPY a <<EOF\nx\nEOF\n"), "COPY cannot accept a heredoc as a destination");
    let Instruction::Copy(json) = ok("COPY [\"<<EOF\", \"/d\"]") else { panic!() };
    assert_eq!(json.sources, vec!["<<EOF"]);
}

#[test]
fn argument_counts() {
    assert_eq!(message("FROM a\nSTOPSIGNAL"), "STOPSIGNAL requires exactly one argument");
    assert_eq!(message("USER"), "USER requires exactly one argument");
    assert_eq!(message("VOLUME"), "VOLUME requires at least one argument");
    assert_eq!(message("EXPOSE"), "EXPOSE requires at least one argument");
    assert_eq!(message("VOLUME [\"\"]"), "VOLUME specified can not be an empty string");
    assert_eq!(message("SHELL sh -c"), "SHELL requires the arguments to be in JSON form");
}

#[test]
fn env_label_arg() {
    assert_eq!(
        ok("ENV a=\"b c\" d=e"),
        Instruction::Env(vec![
            KeyValue { key: "a".into(), value: "\"b c\"".into() },
            KeyValue { key: "d".into(), value: "e".into() }
        ])
    );
    assert_eq!(ok("LABEL k v w"), Instruction::Label(vec![KeyValue { key: "k".into(), value: "v w".into() }]));
    assert_eq!(message("ENV =x"), "ENV names can not be blank");
    assert_eq!(
        ok("ARG a b=\"c d\""),
        Instruction::Arg(vec![
            ArgDecl { name: "a".into(), default: None },
            ArgDecl { name: "b".into(), default: Some("\"c d\"".into()) }
        ])
    );
}

#[test]
fn healthcheck() {
    let Instruction::Healthcheck(Some(check)) = ok("HEALTHCHECK --interval=5s --retries=3 CMD curl -f x") else {
        panic!()
    };
    assert_eq!(check.test, vec!["CMD-SHELL", "curl -f x"]);
    assert_eq!(check.interval, 5_000_000_000);
    assert_eq!((check.timeout, check.retries), (0, 3));
    let Instruction::Healthcheck(Some(check)) = ok("HEALTHCHECK CMD [\"a\", \"b\"]") else { panic!() };
    assert_eq!(check.test, vec!["CMD", "a", "b"]);
    assert_eq!(ok("HEALTHCHECK NONE"), Instruction::Healthcheck(None));
    assert_eq!(message("HEALTHCHECK CONNECT x"), "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)");
    assert_eq!(message("HEALTHCHECK CMD"), "missing command after HEALTHCHECK CMD");
    assert_eq!(message("HEALTHCHECK --interval=1us CMD x"), "Interval \"interval\" cannot be less than 1ms");
    assert_eq!(message("HEALTHCHECK --retries=-1 CMD x"), "--retries cannot be negative (-1)");
}

#[test]
fn onbuild_triggers() {
    assert_eq!(
        ok("ONBUILD RUN echo hi"),
        Instruction::Onbuild {
            trigger: Box::new(Instruction::Run {
                cmd: Command::Shell("echo hi".into()),
                mounts: vec![],
                network: None,
                security: None,
                heredocs: vec![]
            }),
            expression: "RUN echo hi".into()
        }
    );
    let Instruction::Onbuild { expression, .. } = ok("ONBUILD COPY <<EOF /x\nhi\nEOF\n") else { panic!() };
    assert_eq!(expression, "COPY <<EOF /x\nhi\nEOF");
    assert_eq!(message("FROM scratch\nONBUILD FROM scratch"), "FROM isn't allowed as an ONBUILD trigger");
    assert_eq!(message("ONBUILD MAINTAINER me"), "MAINTAINER isn't allowed as an ONBUILD trigger");
    assert_eq!(message("ONBUILD ONBUILD RUN x"), "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    assert_eq!(message("MAINTAINER --boo me"), "unknown flag: --boo");
}

#[test]
fn unknown_instruction_with_suggestion_and_location() {
    let err = last("FROM scratch\nFNTRYPOINT [\"/bin/sh\"]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Dockerfile:2:1: unknown instruction: FNTRYPOINT (did you mean ENTRYPOINT?)\nFNTRYPOINT [\"/bin/sh\"]\n^"
    );
}
