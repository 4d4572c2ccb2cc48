//! `orgaccess can-i VERB SERVICE/DOMAIN[/RESOURCE] --member NAME | --api-key
//! NAME | --as USER`: one decision (core `decision::check`), shaped like
//! `kubectl auth can-i`: `yes` or `no` and exit 0 or 1, with what grants it,
//! what is missing and why. From manifests (`-f`) or the cluster, like
//! `who-can`, which lists everyone this answers yes for.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

use super::identity::AsArgs;
use super::output::OutputFormat;
use super::source::{self, SourceArgs, Subject};
use super::who_can::{Verb, need, parse_verb};
use super::{ClusterArgs, EXIT_FINDINGS, EXIT_OK, emit, fail};
use crate::core::decision::{Answer, Principal, check};
use crate::core::effective::resolve_grantees;

#[derive(Args, Clone, Debug)]
#[command(group(clap::ArgGroup::new("principal").required(true).args(["member", "api_key", "as_user"])))]
pub struct CanIArgs {
    /// What to do: view, edit, create, allowed or push.
    #[arg(value_parser = parse_verb)]
    pub verb: Verb,
    /// SERVICE/DOMAIN or SERVICE/DOMAIN/RESOURCE, e.g. Content/Sources/jira.
    pub target: String,
    /// Ask for this Member (object name).
    #[arg(long)]
    pub member: Option<String>,
    /// Ask for this ApiKey (object name).
    #[arg(long = "api-key")]
    pub api_key: Option<String>,
    // Or for a Kubernetes identity, mapped to Members as admission maps it.
    #[command(flatten)]
    pub who: AsArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// Where the running decision service is, and how to reach it.
#[derive(Args, Clone, Debug, Default)]
pub struct ServerArgs {
    /// Ask the running decision service at this base URL (e.g.
    /// `https://orgaccess-decision.orgaccess-system:8444`) instead of
    /// reading manifests or the cluster: the same question, answered from
    /// the service's index. The namespace is `-n` (default `default`).
    #[arg(long, value_name = "URL", conflicts_with = "files")]
    pub server: Option<String>,
    /// CA bundle (PEM) that signed the service's certificate.
    #[arg(long = "server-ca", value_name = "FILE", requires = "server")]
    pub server_ca: Option<PathBuf>,
    /// Client certificate (PEM) the service knows this caller by (its
    /// `--decision-allow` names the certificate's common name).
    #[arg(long = "client-cert", value_name = "FILE", requires_all = ["server", "client_key"])]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long = "client-key", value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// Largest answer read back from the service.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Asks the decision service `POST /v1/check` (docs/decision-service.md).
pub async fn ask_server(
    server: &ServerArgs,
    namespace: &str,
    principal: &Principal<'_>,
    verb: Verb,
    target: &str,
) -> anyhow::Result<Answer> {
    let base = server.server.as_deref().context("no --server")?;
    let mut client = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(std::time::Duration::from_secs(10));
    if let Some(ca) = &server.server_ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
            client = client.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&server.client_cert, &server.client_key) {
        let mut pem = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
        pem.extend(std::fs::read(key).with_context(|| format!("reading {}", key.display()))?);
        client = client.identity(reqwest::Identity::from_pem(&pem)?);
    }
    let principal = match principal {
        Principal::Member(m) => json!({ "member": m }),
        Principal::ApiKey(k) => json!({ "apiKey": k }),
        Principal::Identity { user, groups } => json!({ "user": user, "groups": groups }),
    };
    let body = json!({
        "namespace": namespace,
        "principal": principal,
        "verb": verb.as_str(),
        "target": target,
    });
    let url = format!("{}/v1/check", base.trim_end_matches('/'));
    let response = client.build()?.post(&url).json(&body).send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    anyhow::ensure!(
        bytes.len() <= MAX_ANSWER_BYTES,
        "the service's answer is larger than {MAX_ANSWER_BYTES} bytes"
    );
    if !status.is_success() {
        let error = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        anyhow::bail!("{url}: {status}: {error}");
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// The answer as `-o json|yaml` prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    namespace: &'a str,
    verb: &'static str,
    target: &'a str,
    #[serde(flatten)]
    answer: &'a Answer,
}

pub async fn run(args: CanIArgs, cluster: &ClusterArgs) -> i32 {
    let need = match need(args.verb, &args.target) {
        Ok(n) => n,
        Err(e) => return fail(&e),
    };
    let identity = args.who.identity();
    let principal = match (&args.member, &args.api_key, &identity) {
        (Some(m), _, _) => Principal::Member(m),
        (_, Some(k), _) => Principal::ApiKey(k),
        (_, _, Some(id)) => Principal::Identity {
            user: &id.user,
            groups: &id.groups,
        },
        _ => unreachable!("clap requires one principal"),
    };
    let (namespace, answer) = if args.server.server.is_some() {
        let namespace = cluster
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let asked = ask_server(
            &args.server,
            &namespace,
            &principal,
            args.verb,
            &args.target,
        );
        match asked.await {
            Ok(a) => (namespace, a),
            Err(e) => return fail(&e),
        }
    } else {
        let org = match source::organization(&args.source, cluster, Subject::Any).await {
            Ok(o) => o,
            Err(e) => return fail(&e),
        };
        let grantees = resolve_grantees(&org.state);
        let answer = check(&org.state, &grantees, principal, &need, Timestamp::now());
        (org.namespace, answer)
    };
    let report = Report {
        namespace: &namespace,
        verb: args.verb.as_str(),
        target: &args.target,
        answer: &answer,
    };
    emit(&args.output.render(&report, || human(&answer)));
    if answer.allowed {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }
}

fn human(a: &Answer) -> String {
    if a.allowed {
        return format!("yes (through {})\n", a.granted_by.join(", "));
    }
    let mut out = String::from("no");
    if let Some(why) = &a.reason {
        out.push_str(&format!(": {why}"));
    } else if !a.missing.is_empty() {
        let missing: Vec<String> = a.missing.iter().map(|p| p.to_string()).collect();
        out.push_str(&format!(": missing {}", missing.join(", ")));
    }
    out.push('\n');
    out
}
