//! `GET /activity` on the admin port: the last admission decisions, to a
//! caller authenticated by bearer token ([`crate::token_review`]) and
//! allowed by the organization's own rule ([`may_view_activities`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Activity, Index, Webhook, activity};

#[derive(serde::Deserialize)]
pub(super) struct ActivityQuery {
    namespace: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn activity_list(
    State((webhook, reviewer)): State<(Webhook, Arc<crate::token_review::Reviewer>)>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
    Query(q): Query<ActivityQuery>,
) -> Response {
    use crate::token_review::{Verdict, bearer};
    let Some(token) = bearer(&headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            "GET /activity needs a bearer token (Authorization: Bearer ...)",
        )
            .into_response();
    };
    let source = peer.map(|p| (p.0).0.ip());
    let (user, groups) = match reviewer.review_from(token, source).await {
        Verdict::Authenticated(who) => (who.user.clone(), who.groups.clone()),
        Verdict::Rejected => {
            return (StatusCode::UNAUTHORIZED, "the token is not valid").into_response();
        }
        Verdict::Unavailable => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "could not review the token",
            )
                .into_response();
        }
        Verdict::Limited => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "too many unknown tokens from this address; retry later",
            )
                .into_response();
        }
    };
    let validator = &webhook.inner.validator;
    let policy = &validator.policy;
    let trusted = policy.trusts(&user, &groups);
    let namespace = q.namespace.filter(|ns| !ns.is_empty());
    if !trusted {
        let Some(ns) = namespace.as_deref() else {
            return (
                StatusCode::FORBIDDEN,
                "name the organization's namespace (?namespace=NS): only trusted principals list every namespace",
            )
                .into_response();
        };
        if !may_view_activities(&validator.index, ns, &user, &groups) {
            tracing::info!(target: activity::TARGET, %user, namespace = ns, "activity listing refused");
            return (
                StatusCode::FORBIDDEN,
                format!(
                    "'{user}' does not hold Organization/Activities: View in the organization of namespace {ns}"
                ),
            )
                .into_response();
        }
    }
    let limit = q
        .limit
        .unwrap_or(100)
        .min(webhook.inner.config.activity_capacity);
    let list = validator.activity.list(namespace.as_deref(), limit);
    let list: Vec<&Activity> = list.iter().map(Arc::as_ref).collect();
    axum::Json(list).into_response()
}

/// The organization's own rule: a requester mapped (as admission maps them)
/// to members holding Organization/Activities: View or more.
pub fn may_view_activities(index: &Index, namespace: &str, user: &str, groups: &[String]) -> bool {
    use crate::core::catalog::{self, Service};
    use crate::core::privilege::Level;
    let Some(domain) = catalog::lookup(Service::Organization, "Activities") else {
        return false;
    };
    let view = index
        .namespace(namespace)
        .requester(user, groups, crate::clock::now());
    !view.members.is_empty()
        && view
            .privileges
            .get(domain)
            .is_some_and(|g| g.level >= Level::View)
}
