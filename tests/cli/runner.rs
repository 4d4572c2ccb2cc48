//! The `orgaccess` binary run as a user runs it, for the modules of this
//! test binary: its exit code and outputs, never a panic, never colour on a
//! pipe, no kubeconfig but the one given.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// What one run printed, and how it exited.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The crate's root, where paths in golden outputs are relative to.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `orgaccess args` from the crate root, with `kubeconfig` if any.
pub fn run(args: &[&str], kubeconfig: Option<&Path>) -> Out {
    run_env(args, None, kubeconfig)
}

/// Runs `orgaccess args` in `dir`, with `kubeconfig` if any.
pub fn run_in(dir: &Path, args: &[&str], kubeconfig: Option<&Path>) -> Out {
    invoke(dir, args, None, kubeconfig)
}

/// Runs `orgaccess args` from the crate root with `stdin` as its input.
pub fn run_env(args: &[&str], stdin: Option<&str>, kubeconfig: Option<&Path>) -> Out {
    invoke(root(), args, stdin, kubeconfig)
}

fn invoke(dir: &Path, args: &[&str], stdin: Option<&str>, kubeconfig: Option<&Path>) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orgaccess"));
    cmd.args(args)
        .current_dir(dir)
        .env("ORGACCESS_LOG", "warn")
        .env_remove("NO_COLOR")
        .env_remove("KUBECONFIG");
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the binary runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("the binary finishes");
    let res = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    };
    assert!(
        !res.stderr.contains("panicked"),
        "orgaccess {args:?} panicked:\n{}",
        res.stderr
    );
    assert!(
        !res.stdout.contains('\x1b') && !res.stderr.contains('\x1b'),
        "colour on a pipe: {args:?}"
    );
    res
}
