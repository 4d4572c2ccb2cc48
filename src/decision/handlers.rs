//! The decision endpoints: bounded JSON in, the core's answers out.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;

use crate::controller::now;
use serde::Deserialize;
use serde_json::json;

use super::metrics::{Outcome, Reason, tell};
use super::{Gate, MAX_BATCH, Service};
use crate::core::decision::{self, Answer, KeyRefusal, Need, Principal, Verb};
use crate::webhook::tls::ClientName;

/// Who a check is about: exactly one of a Member, an ApiKey (by name) or a
/// Kubernetes identity.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrincipalRequest {
    #[serde(default)]
    pub member: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `POST /v1/check`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckRequest {
    pub namespace: String,
    pub principal: PrincipalRequest,
    pub verb: String,
    pub target: String,
}

/// `POST /v1/check/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub checks: Vec<CheckRequest>,
}

/// `POST /v1/keys/verify`. No `Debug`: it holds a key value.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    pub namespace: String,
    pub key: String,
    pub client_ip: IpAddr,
}

/// A refusal of the question itself (not a decision): status and reason.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn forbidden(namespace: &str) -> Refused {
    Refused(
        StatusCode::FORBIDDEN,
        format!("this caller may not ask about namespace {namespace:?}"),
    )
}

/// Refuses a caller that may not ask about `namespace`.
fn admit(service: &Service, caller: Option<&ClientName>, namespace: &str) -> Result<(), Refused> {
    let allowed = match &service.gate {
        Gate::Fixed(reach) => reach.covers(namespace),
        Gate::Certificates(callers) => {
            callers.may_ask(caller.and_then(|c| c.0.as_deref()), namespace)
        }
    };
    allowed.then_some(()).ok_or_else(|| forbidden(namespace))
}

/// One check, answered from the namespace's snapshot. Names the question
/// carries (a resource) are interned for this question only: asking about
/// ever new names must not grow the process (the webhook does the same).
fn answer(service: &Service, q: &CheckRequest, now: Timestamp) -> Result<Answer, Refused> {
    crate::core::privilege::request_scope(|| answer_in_scope(service, q, now))
}

fn answer_in_scope(service: &Service, q: &CheckRequest, now: Timestamp) -> Result<Answer, Refused> {
    let bad = |m: String| Refused(StatusCode::BAD_REQUEST, m);
    let verb: Verb = q.verb.parse().map_err(|e: String| bad(e))?;
    let need = Need::parse(verb, &q.target).map_err(bad)?;
    let p = &q.principal;
    let principal = match (&p.member, &p.api_key, &p.user) {
        (Some(m), None, None) => Principal::Member(m),
        (None, Some(k), None) => Principal::ApiKey(k),
        (None, None, Some(_)) if p.groups.len() > crate::webhook::limits::MAX_GROUPS => {
            return Err(bad(crate::webhook::limits::too_many_groups(
                "principal.groups",
                p.groups.len(),
            )));
        }
        // Only the groups Members name are read (`Namespace::requester`).
        (None, None, Some(user)) => Principal::Identity {
            user,
            groups: &p.groups,
        },
        _ => {
            return Err(bad(
                "principal: give exactly one of member, apiKey, user (with groups)".into(),
            ));
        }
    };
    Ok(service
        .index
        .namespace(&q.namespace)
        .check(principal, &need, now))
}

pub async fn check(
    State(service): State<Service>,
    caller: Option<axum::Extension<ClientName>>,
    Json(q): Json<CheckRequest>,
) -> Response {
    let caller = caller.map(|c| c.0);
    let result =
        admit(&service, caller.as_ref(), &q.namespace).and_then(|()| answer(&service, &q, now()));
    match result {
        Ok(a) => {
            tell(Outcome::answer(&a));
            Json(a).into_response()
        }
        Err(r) => r.into_response(),
    }
}

pub async fn check_batch(
    State(service): State<Service>,
    caller: Option<axum::Extension<ClientName>>,
    Json(batch): Json<BatchRequest>,
) -> Response {
    if batch.checks.len() > MAX_BATCH {
        return Refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_BATCH} checks per batch"),
        )
        .into_response();
    }
    let caller = caller.map(|c| c.0);
    let now = now();
    let mut answers = Vec::with_capacity(batch.checks.len());
    for q in &batch.checks {
        // One refused question refuses the batch: a partial answer would
        // let a console render a page from half the facts.
        match admit(&service, caller.as_ref(), &q.namespace).and_then(|()| answer(&service, q, now))
        {
            Ok(a) => answers.push(a),
            Err(r) => return r.into_response(),
        }
    }
    tell(Outcome::batch(&answers));
    Json(json!({ "answers": answers })).into_response()
}

/// A key verification: the verified key, or why the value is refused. A
/// verified key's use is recorded (by name; `usage.rs`).
fn verify_in(
    service: &Service,
    namespace: &str,
    presented: &[u8],
    client: IpAddr,
) -> Result<decision::VerifiedKey, KeyRefusal> {
    let ns = service.index.namespace(namespace);
    let table = service.index.key_table(namespace);
    // The controller's clock, so a key the controller reports expired is
    // refused here at the same instant (and tests can run ahead).
    let now = now();
    let verified = decision::verify_key(&ns.state, &ns.grantees(), &table, presented, client, now)?;
    service.usage.record(namespace, &verified.name, now);
    Ok(verified)
}

pub async fn verify(
    State(service): State<Service>,
    caller: Option<axum::Extension<ClientName>>,
    Json(q): Json<VerifyRequest>,
) -> Response {
    let caller = caller.map(|c| c.0);
    if let Err(r) = admit(&service, caller.as_ref(), &q.namespace) {
        return r.into_response();
    }
    let verified = verify_in(&service, &q.namespace, q.key.as_bytes(), q.client_ip);
    tell(Outcome::key(&verified));
    match verified {
        Ok(key) => Json(json!({ "valid": true, "key": key })).into_response(),
        Err(why) => Json(json!({
            "valid": false,
            "refusal": why,
            "reason": why.as_str(),
        }))
        .into_response(),
    }
}

/// The presented key: `X-Api-Key`, else `Authorization: Bearer`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key") {
        return v.to_str().ok();
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The client's address as the proxy reports it: the first
/// `X-Forwarded-For` entry (the proxy sets it from the connection), else
/// `X-Real-IP`.
fn client_address(headers: &HeaderMap) -> Option<IpAddr> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(forwarded) = header("x-forwarded-for") {
        return forwarded.split(',').next()?.trim().parse().ok();
    }
    header("x-real-ip")?.trim().parse().ok()
}

/// Privileges as one header value: `Service/Domain=Level`, `;`-separated.
fn compact_privileges(specs: &[crate::core::privilege::PrivilegeSpec]) -> String {
    specs
        .iter()
        .map(|s| {
            let mut one = format!("{}/{}={:?}", s.service, s.domain, s.level);
            if s.can_create == Some(true) {
                one.push_str("+Create");
            }
            one
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn status_only(status: StatusCode, reason: &str) -> Response {
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(reason) {
        r.headers_mut().insert("x-orgaccess-reason", v);
    }
    r
}

/// NGINX `auth_request`: 200 with the identity (and the key's search hub,
/// for the gateway to enforce) as headers, 401 for a key
/// that is not live, 403 for an address the key refuses (or a namespace
/// this listener may not ask about). The client address is the first
/// `X-Forwarded-For` entry (NGINX sets the header from `$remote_addr`), else
/// `X-Real-IP`.
pub async fn nginx_auth(
    State(service): State<Service>,
    caller: Option<axum::Extension<ClientName>>,
    headers: HeaderMap,
) -> Response {
    let client = client_address(&headers);
    gateway_auth(&service, caller.map(|c| c.0), &headers, client)
}

/// Envoy's HTTP external authorization (`ext_authz` with an `http_service`
/// whose `path_prefix` is `/envoy/authz`): Envoy sends the original request's
/// method and path under the prefix, the allowed headers, no body; 200 lets
/// the request through with the identity headers Envoy may forward upstream
/// (`allowed_upstream_headers`), anything else is the status the client
/// gets. The answers are the NGINX endpoint's; only the client address is
/// read differently: the *last* `X-Forwarded-For` entry, the one Envoy
/// appends with `use_remote_address: true` (earlier entries are whatever the
/// client claimed).
pub async fn envoy_authz(
    State(service): State<Service>,
    caller: Option<axum::Extension<ClientName>>,
    headers: HeaderMap,
) -> Response {
    let client = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next()?.trim().parse().ok());
    gateway_auth(&service, caller.map(|c| c.0), &headers, client)
}

/// A gateway's question: is the presented key live for this client?
fn gateway_auth(
    service: &Service,
    caller: Option<ClientName>,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Response {
    let namespace = headers
        .get("x-orgaccess-namespace")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| service.default_namespace.clone());
    let Some(namespace) = namespace else {
        return status_only(StatusCode::BAD_REQUEST, "no namespace");
    };
    if admit(service, caller.as_ref(), &namespace).is_err() {
        return status_only(StatusCode::FORBIDDEN, "namespace not allowed");
    }
    let Some(key) = presented_key(headers) else {
        tell(Outcome::denied(Reason::NoKey));
        return status_only(StatusCode::UNAUTHORIZED, "no key");
    };
    let Some(client) = client else {
        return status_only(StatusCode::BAD_REQUEST, "no client address");
    };
    let verified = verify_in(service, &namespace, key.as_bytes(), client);
    tell(Outcome::key(&verified));
    match verified {
        // A 500 here (a hub that cannot be sent) counts as an error: an
        // allowed answer that is not a success is one (`Metrics::record`).
        Ok(k) => identity_headers(service, &namespace, &k),
        Err(KeyRefusal::AddressRefused) => {
            status_only(StatusCode::FORBIDDEN, KeyRefusal::AddressRefused.as_str())
        }
        Err(why) => status_only(StatusCode::UNAUTHORIZED, why.as_str()),
    }
}

fn identity_headers(service: &Service, namespace: &str, k: &decision::VerifiedKey) -> Response {
    // A hub the gateway would not receive unchanged would leave the key
    // unbound there: fail closed (admission and the CRD refuse such a name,
    // so only an object stored past both gets here).
    if k.search_hub
        .as_deref()
        .is_some_and(|hub| crate::core::apikey::search_hub_problem(hub).is_some())
    {
        return status_only(
            StatusCode::INTERNAL_SERVER_ERROR,
            "search hub cannot be sent",
        );
    }
    let organization = service
        .index
        .namespace(namespace)
        .state
        .org
        .as_ref()
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let mut r = StatusCode::OK.into_response();
    let h = r.headers_mut();
    for (name, value) in [
        ("x-orgaccess-key", k.name.clone()),
        ("x-orgaccess-namespace", namespace.to_string()),
        ("x-orgaccess-organization", organization),
        ("x-orgaccess-privileges", compact_privileges(&k.privileges)),
        // Always sent, empty for a key bound to no hub, so that a gateway
        // copying `x-orgaccess-*` upstream replaces whatever a client sent
        // under this name. The name is header-safe (`apikey::search_hub_problem`).
        (
            "x-orgaccess-search-hub",
            k.search_hub.clone().unwrap_or_default(),
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    r
}
