//! Issue 16: the command-line tool behaves like the Unix tools around it.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_orgaccess");

/// `orgaccess catalog | head -1`: the reader goes away early; the
/// tool ends by SIGPIPE like any Unix tool, never with a panic.
#[test]
fn a_closed_pipe_ends_the_tool_quietly() {
    for args in [&["catalog"][..], &["crds"][..]] {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the tool has started writing (it is
        // still starting up), so its first write meets a closed pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?} panicked");
    }
}

/// `orgaccess check` on a directory without orgaccess objects fails unless
/// told that is fine: a CI job pointed at the wrong path must not pass.
#[test]
fn check_fails_when_it_checked_nothing() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(
        empty.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .arg("check")
            .args(extra)
            .arg(empty.path())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was checked"));
    assert_eq!(run(&["--allow-empty"]).status.code(), Some(0));
    let examples = Command::new(BIN)
        .args(["check", concat!(env!("CARGO_MANIFEST_DIR"), "/examples")])
        .output()
        .unwrap();
    assert_eq!(examples.status.code(), Some(0));
}
