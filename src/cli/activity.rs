//! `orgaccess activity`: lists admission decisions from the durable record,
//! the webhook's activity file (`--activity-file`, JSON lines) or its log
//! lines (`--log-format json`, target `orgaccess::activity`; schema in
//! docs/webhook.md), as JSON, filtered.
//!
//! ```sh
//! kubectl -n orgaccess-system logs deploy/orgaccess --since=24h \
//!   | orgaccess activity --namespace acme --denied
//! ```

use std::io::BufRead;
use std::path::PathBuf;

use serde_json::{Value, json};

/// Longest log line read; longer ones are skipped (records are a few KiB).
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, clap::Args)]
pub struct ActivityArgs {
    /// JSON-lines log files of the operator or webhook; none or `-`: stdin.
    pub files: Vec<PathBuf>,
    /// Only this namespace (organization): the global `-n/--namespace`.
    #[arg(skip)]
    pub namespace: Option<String>,
    /// Only this Kubernetes user.
    #[arg(long)]
    pub user: Option<String>,
    /// Only this kind (Organization, Group, Member, ApiKey).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only denied changes.
    #[arg(long, conflicts_with = "allowed")]
    pub denied: bool,
    /// Only admitted changes.
    #[arg(long)]
    pub allowed: bool,
    /// Only decisions at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<jiff::Timestamp>,
    /// At most this many (the most recent).
    #[arg(long)]
    pub limit: Option<usize>,
    /// The records as a JSON array (default) or YAML.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: super::output::OutputFormat,
}

/// One decision read back from a line of the activity file (as is) or of the
/// JSON log, in the shape of `GET /activity`.
pub fn record(line: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(line).ok()?;
    if v.get("uid").is_some_and(Value::is_string) && v.get("allowed").is_some_and(Value::is_boolean)
    {
        return Some(v);
    }
    if v.get("target")?.as_str()? != crate::webhook::activity::TARGET {
        return None;
    }
    let f = v.get("fields")?;
    let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default();
    let uid = f.get("uid")?.as_str()?;
    // Debug-formatted lists: ["a", "b"] and [Rule, Rule].
    let list = |k: &str| -> Vec<String> {
        s(k).trim_matches(|c| c == '[' || c == ']')
            .split(", ")
            .map(|x| x.trim_matches('"').to_string())
            .filter(|x| !x.is_empty())
            .collect()
    };
    // The denial message (the line's own `message` is its one-line summary).
    let message = s("denial");
    Some(json!({
        "time": v.get("timestamp").cloned().unwrap_or(Value::Null),
        // `apiserver`, `not authenticated`, or empty in lines written before
        // the webhook said.
        "caller": s("caller"),
        "uid": uid,
        "user": s("user"),
        "requester": s("requester"),
        "members": list("members"),
        "operation": s("operation"),
        "kind": s("kind"),
        "namespace": s("namespace"),
        "name": s("name"),
        "allowed": f.get("allowed").and_then(Value::as_bool).unwrap_or(false),
        "rules": list("rules"),
        "dryRun": f.get("dry_run").and_then(Value::as_bool).unwrap_or(false),
        "message": message,
    }))
}

fn keep(args: &ActivityArgs, r: &Value) -> bool {
    let is = |k: &str, want: &Option<String>| want.as_deref().is_none_or(|w| r[k] == w);
    let allowed = r["allowed"].as_bool().unwrap_or(false);
    let since = args.since.is_none_or(|t| {
        r["time"]
            .as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .is_some_and(|at| at >= t)
    });
    is("namespace", &args.namespace)
        && is("user", &args.user)
        && is("kind", &args.kind)
        && !(args.denied && allowed)
        && (!args.allowed || allowed)
        && since
}

fn scan(args: &ActivityArgs, input: impl BufRead, out: &mut Vec<Value>) -> std::io::Result<()> {
    for line in input.split(b'\n') {
        let line = line?;
        if line.len() > MAX_LINE {
            continue;
        }
        let Ok(line) = std::str::from_utf8(&line) else {
            continue;
        };
        if let Some(r) = record(line).filter(|r| keep(args, r)) {
            out.push(r);
        }
    }
    Ok(())
}

/// Runs the command; the exit code.
pub fn run(mut args: ActivityArgs, cluster: &super::ClusterArgs) -> i32 {
    args.namespace = cluster.namespace.clone();
    let mut out = Vec::new();
    let result = if args.files.is_empty() || args.files.iter().any(|f| f.as_os_str() == "-") {
        scan(&args, std::io::stdin().lock(), &mut out)
    } else {
        args.files.iter().try_for_each(|f| {
            let file = std::fs::File::open(f)?;
            scan(&args, std::io::BufReader::new(file), &mut out)
        })
    };
    if let Err(e) = result {
        return super::fail(&anyhow::Error::new(e).context("reading the activity log"));
    }
    if let Some(limit) = args.limit {
        let skip = out.len().saturating_sub(limit);
        out.drain(..skip);
    }
    super::emit(
        &args
            .output
            .document(&out, super::output::OutputFormat::Json),
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"timestamp":"2026-11-30T05:00:00.123Z","level":"INFO","fields":{"message":"denied DELETE Group acme/administrators","uid":"u-1","user":"alice","requester":"member","members":"[\"alice\"]","operation":"DELETE","kind":"Group","namespace":"acme","name":"administrators","allowed":false,"rules":"[AdministratorsProtected]","dry_run":false,"denial":"Group acme/administrators denied: [AdministratorsProtected] ..."},"target":"orgaccess::activity"}"#;

    #[test]
    fn reads_back_the_log_lines_of_decisions() {
        let r = record(LINE).unwrap();
        assert_eq!(r["user"], "alice");
        assert_eq!(r["members"], json!(["alice"]));
        assert_eq!(r["rules"], json!(["AdministratorsProtected"]));
        assert_eq!(r["allowed"], false);
        assert_eq!(r["caller"], "", "a line from before the caller was said");
        let marked = LINE.replace(
            r#""uid":"u-1""#,
            r#""caller":"not authenticated","uid":"u-1""#,
        );
        assert_eq!(record(&marked).unwrap()["caller"], "not authenticated");
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .starts_with("Group acme/administrators denied")
        );
        assert!(record(r#"{"target":"kube","fields":{}}"#).is_none());
        assert!(record("not json").is_none());
        let file_line = r#"{"time":"2026-11-30T05:00:00Z","uid":"u-2","user":"bob","requester":"member","operation":"CREATE","kind":"Group","namespace":"acme","name":"g","allowed":true,"dryRun":false}"#;
        assert_eq!(record(file_line).unwrap()["user"], "bob");
    }

    #[test]
    fn filters() {
        let args = |denied, ns: &str| ActivityArgs {
            files: vec![],
            namespace: Some(ns.into()),
            user: None,
            kind: None,
            denied,
            allowed: false,
            since: Some("2026-11-30T00:00:00Z".parse().unwrap()),
            limit: None,
            output: Default::default(),
        };
        let mut out = Vec::new();
        let input = format!("{LINE}\nnoise\n{LINE}\n");
        scan(&args(true, "acme"), input.as_bytes(), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        out.clear();
        scan(&args(true, "other"), input.as_bytes(), &mut out).unwrap();
        assert!(out.is_empty());
    }
}
