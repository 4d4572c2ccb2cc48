//! The decision service behind a real NGINX (Debian's package, installed by
//! `tools/install-nginx.sh`): `auth_request` to `orgaccess run`'s
//! `/nginx/auth`, a tiny upstream that echoes the identity NGINX forwards,
//! and changes applied with kubectl (address lists, rotation, disabling, a
//! search hub NGINX forces on the query) taking effect without a restart; and, with the operator's clock moved on,
//! a rotated key's previous value refused after its overlap and an expired
//! key refused.

use crate::operator;
use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use orgaccess::api::ApiKey;

use operator::{Operator, apply_examples, eventually};

const WAIT: Duration = Duration::from_secs(60);
const KEY: &str = "public-search";

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("nginx is not installed: run `bash tools/install-nginx.sh`")
}

/// The configuration under test (also the one docs/decision-service.md
/// shows): `/` is guarded by `auth_request`, the identity forwarded as
/// headers, the key itself not forwarded; a second server is the upstream
/// and echoes what it received.
fn nginx_conf(dir: &Path, port: u16, upstream: u16, decision: u16, namespace: &str) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  map $oa_search_hub $search_hub {{
    "" $arg_searchHub;
    default $oa_search_hub;
  }}
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      auth_request /_orgaccess;
      auth_request_set $oa_key $upstream_http_x_orgaccess_key;
      auth_request_set $oa_org $upstream_http_x_orgaccess_organization;
      auth_request_set $oa_privileges $upstream_http_x_orgaccess_privileges;
      auth_request_set $oa_search_hub $upstream_http_x_orgaccess_search_hub;
      proxy_set_header X-Orgaccess-Key $oa_key;
      proxy_set_header X-Orgaccess-Organization $oa_org;
      proxy_set_header X-Orgaccess-Privileges $oa_privileges;
      proxy_set_header X-Orgaccess-Search-Hub $oa_search_hub;
      proxy_set_header X-Api-Key "";
      proxy_set_header Authorization "";
      # The key's search hub, when it has one, replaces the one the query asks for.
      proxy_pass http://127.0.0.1:{upstream}$uri?searchHub=$search_hub;
    }}
    location = /_orgaccess {{
      internal;
      proxy_pass http://127.0.0.1:{decision}/nginx/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Orgaccess-Namespace {namespace};
    }}
  }}
  server {{
    listen 127.0.0.1:{upstream};
    location / {{
      return 200 "key=$http_x_orgaccess_key org=$http_x_orgaccess_organization apikey=[$http_x_api_key] searchHub=[$arg_searchHub] bound=[$http_x_orgaccess_search_hub]\n";
    }}
  }}
}}
"#
    )
}

/// NGINX as this test's own (non-root) process; stopped on drop.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    fn start(port: u16, upstream: u16, decision: u16, namespace: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(
            &conf,
            nginx_conf(dir.path(), port, upstream, decision, namespace),
        )
        .unwrap();
        let child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nginx");
        Nginx { child, dir }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- nginx error log ---\n{}", self.error_log());
        }
    }
}

async fn get(url: &str, key: Option<&str>) -> (u16, String) {
    get_with(url, key, &[]).await
}

async fn get_with(url: &str, key: Option<&str>, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(k) = key {
        req = req.header("X-Api-Key", k);
    }
    match req.send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// Waits until a request with `key` gets `status` through NGINX.
async fn until_status(url: &str, key: &str, status: u16, what: &str) -> String {
    eventually(what, WAIT, || async {
        let (s, body) = get(url, Some(key)).await;
        (s == status).then_some(body)
    })
    .await
}

async fn kubectl_patch(ns: &str, patch: &str) {
    let out = support::kubectl(
        support::ADMIN,
        &[
            "patch", "apikey", KEY, "-n", ns, "--type", "merge", "-p", patch,
        ],
    )
    .await;
    support::assert_success("kubectl patch", &out);
}

/// `orgaccess run` for `ns` with the NGINX listener on `decision`, its clock
/// `clock_offset_secs` ahead.
fn decision_operator(name: &str, ns: &str, decision: u16, clock_offset_secs: i64) -> Operator {
    let decision_addr = format!("127.0.0.1:{decision}");
    Operator::start_with(
        name,
        clock_offset_secs,
        Some(ns),
        &[
            "--decision-nginx-addr",
            &decision_addr,
            "--decision-nginx-namespaces",
            ns,
        ],
    )
}

/// The key's current value, from its Secret.
async fn key_value(client: &kube::Client, ns: &str) -> String {
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get(&format!("{KEY}-apikey"))
        .await
        .unwrap();
    String::from_utf8(secret.data.unwrap()["apiKey"].0.clone()).unwrap()
}

/// Rotates the key (the previous value valid one more day) and returns the
/// new value once the status holds the previous one's digest.
async fn rotate(client: &kube::Client, ns: &str) -> String {
    let keys: Api<ApiKey> = Api::namespaced(client.clone(), ns);
    kubectl_patch(
        ns,
        r#"{"spec":{"rotation":{"generation":1,"previousKeyValidity":"P1D"}}}"#,
    )
    .await;
    eventually("the previous value's digest in status", WAIT, || async {
        keys.get(KEY).await.ok()?.status?.previous_hash.map(|_| ())
    })
    .await;
    key_value(client, ns).await
}

/// The examples in a fresh namespace, their operator with the NGINX
/// listener, and NGINX in front of an upstream.
struct Setup {
    client: kube::Client,
    ns: String,
    decision: u16,
    operator: Operator,
    nginx: Nginx,
    url: String,
    /// The key's value once it is live.
    value: String,
}

async fn setup(name: &str) -> Setup {
    let client = support::admin_client().await;
    operator::install_crds().await;
    let ns = support::fresh_namespace(&client).await;
    let decision = support::free_port();
    let operator = decision_operator(name, &ns, decision, 0);
    apply_examples(&ns).await;
    let keys: Api<ApiKey> = Api::namespaced(client.clone(), &ns);
    eventually("the key's status hash", WAIT, || async {
        keys.get(KEY).await.ok()?.status?.hash.map(|_| ())
    })
    .await;
    let value = key_value(&client, &ns).await;
    let (port, upstream) = (support::free_port(), support::free_port());
    let nginx = Nginx::start(port, upstream, decision, &ns);
    let url = format!("http://127.0.0.1:{port}/page");
    Setup {
        client,
        ns,
        decision,
        operator,
        nginx,
        url,
        value,
    }
}

#[tokio::test]
async fn nginx_auth_request_admits_live_keys_and_refuses_the_rest() {
    let Setup {
        client,
        ns,
        operator,
        nginx,
        url,
        value,
        ..
    } = setup("decision-nginx").await;

    // A live key passes; the upstream sees the identity, not the key.
    let body = until_status(&url, &value, 200, "a live key to pass through NGINX").await;
    assert!(body.contains(&format!("key={KEY} ")), "{body}");
    assert!(body.contains("org=") && !body.contains("org= "), "{body}");
    assert!(
        body.contains("apikey=[]"),
        "the key reached the upstream: {body}"
    );

    assert_eq!(get(&url, Some("oa_not_a_key")).await.0, 401);
    assert_eq!(get(&url, None).await.0, 401);

    search_hub_is_enforced_by_nginx(&client, &ns, &url, &value).await;

    // NGINX connects from 127.0.0.1: an allow list without it refuses the address.
    kubectl_patch(&ns, r#"{"spec":{"allowedIps":["10.0.0.0/8"]}}"#).await;
    until_status(
        &url,
        &value,
        403,
        "an address outside allowedIps to be refused",
    )
    .await;
    kubectl_patch(&ns, r#"{"spec":{"allowedIps":["127.0.0.0/8"]}}"#).await;
    until_status(&url, &value, 200, "the address to be allowed again").await;

    // Rotated: the new value passes, and the previous one during its overlap.
    let new_value = rotate(&client, &ns).await;
    assert_ne!(new_value, value);
    until_status(&url, &new_value, 200, "the rotated value to pass").await;
    let body = until_status(
        &url,
        &value,
        200,
        "the previous value to pass in its overlap",
    )
    .await;
    assert!(body.contains(&format!("key={KEY} ")), "{body}");

    // Disabled with kubectl: refused without restarting anything.
    kubectl_patch(&ns, r#"{"spec":{"enabled":false}}"#).await;
    until_status(&url, &value, 401, "a disabled key to be refused").await;
    until_status(
        &url,
        &new_value,
        401,
        "a disabled key's new value to be refused",
    )
    .await;
    for v in [&value, &new_value] {
        assert!(
            !nginx.error_log().contains(v.as_str()),
            "nginx logged a key"
        );
        assert!(
            !operator.logs().contains(v.as_str()),
            "the operator logged a key"
        );
    }
}

/// A search hub set with kubectl reaches the key's status and NGINX: the
/// query's `searchHub` is replaced by the key's, whatever the client asks
/// for or claims in `X-Orgaccess-Search-Hub`; without a hub the query's own
/// passes, and a spoofed header does not reach the upstream.
async fn search_hub_is_enforced_by_nginx(client: &kube::Client, ns: &str, url: &str, value: &str) {
    let asking = format!("{url}?searchHub=intranet");
    let spoof = [("X-Orgaccess-Search-Hub", "intranet")];
    let (status, body) = get_with(&asking, Some(value), &spoof).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("searchHub=[intranet] bound=[]"),
        "an unbound key's query keeps its hub, and the claimed binding is dropped: {body}"
    );

    kubectl_patch(ns, r#"{"spec":{"searchHub":"community"}}"#).await;
    let keys: Api<ApiKey> = Api::namespaced(client.clone(), ns);
    eventually("the search hub in the key's status", WAIT, || async {
        let status = keys.get(KEY).await.ok()?.status?;
        (status.search_hub.as_deref() == Some("community")).then_some(())
    })
    .await;
    let body = eventually("NGINX to force the key's search hub", WAIT, || async {
        let (s, body) = get_with(&asking, Some(value), &spoof).await;
        (s == 200 && body.contains("searchHub=[community]")).then_some(body)
    })
    .await;
    assert!(body.contains("bound=[community]"), "{body}");

    kubectl_patch(ns, r#"{"spec":{"searchHub":null}}"#).await;
    eventually(
        "the query's own hub once the key is unbound",
        WAIT,
        || async {
            let (s, body) = get_with(&asking, Some(value), &spoof).await;
            (s == 200 && body.contains("searchHub=[intranet] bound=[]")).then_some(())
        },
    )
    .await;
    eventually(
        "the search hub gone from the key's status",
        WAIT,
        || async {
            let status = keys.get(KEY).await.ok()?.status?;
            status.search_hub.is_none().then_some(())
        },
    )
    .await;
}

/// Time passing, through NGINX: the operator is started again with its clock
/// two days on (the previous value's one-day overlap is over), then 400 days
/// on (past any key's lifetime). NGINX and its configuration stay as they are.
#[tokio::test]
async fn nginx_refuses_a_previous_value_past_its_overlap_and_an_expired_key() {
    let Setup {
        client,
        ns,
        decision,
        mut operator,
        nginx: _nginx,
        url,
        value,
    } = setup("decision-nginx-now").await;
    let new_value = rotate(&client, &ns).await;
    until_status(&url, &new_value, 200, "the rotated value to pass").await;
    until_status(&url, &value, 200, "the previous value in its overlap").await;

    const DAY: i64 = 86_400;
    operator.kill();
    let mut operator = decision_operator("decision-nginx-later", &ns, decision, 2 * DAY);
    until_status(&url, &value, 401, "the previous value past its overlap").await;
    until_status(&url, &new_value, 200, "the current value still to pass").await;

    operator.kill();
    let operator = decision_operator("decision-nginx-much-later", &ns, decision, 400 * DAY);
    until_status(&url, &new_value, 401, "an expired key to be refused").await;
    assert!(
        !operator.logs().contains(new_value.as_str()),
        "the operator logged a key"
    );
}
