//! One admission request, from body bytes to an `AdmissionReview` answer.
//!
//! Everything is decided by the pipeline `orgaccess check` runs too
//! ([`crate::judge`]); this module only reads the request (what it asks, the
//! stored key's status `KeyLifecycle` reads), says who asks ([`Policy`]) and
//! writes the answer. A body that cannot be read is answered with a denial
//! in a well-formed `AdmissionReview`, never with an HTTP error.
use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview, Operation as AdmissionOp};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::activity::{Activity, Asked};
use crate::api::{self, AccessReview, ApiKey, Group, Member, Organization};
use crate::core::apikey::Reported;
use crate::core::change::Def;
use crate::core::model::{AccessReviewDef, ApiKeyDef, GroupDef, Kind, MemberDef, OrgDef};
use crate::core::rules::Operation;
use crate::index::Index;
use crate::judge::{self, Asker};

const ADMISSION_V1: &str = "admission.k8s.io/v1";

/// Who the webhook treats specially (docs/rules.md: who asks). These are the
/// flags themselves (flattened into [`super::WebhookArgs`]) and the value the
/// handler reads: one definition, no copies in between.
#[derive(Clone, Debug, clap::Args)]
pub struct Policy {
    /// Users trusted as platform principals: they skip the requester rules,
    /// never CatalogValidity or AdministratorsProtected (docs/rules.md).
    #[arg(long = "trusted-user", env = "ORGACCESS_TRUSTED_USERS", value_delimiter = ',',
          default_value = super::DEFAULT_GARBAGE_COLLECTOR_USER)]
    pub trusted_users: Vec<String>,
    /// Groups whose members are trusted as platform principals.
    #[arg(long = "trusted-group", env = "ORGACCESS_TRUSTED_GROUPS", value_delimiter = ',',
          default_value = super::DEFAULT_TRUSTED_GROUP)]
    pub trusted_groups: Vec<String>,
    /// The operator's own user name (its service account): trusted, and the
    /// only one that creates built-in groups.
    #[arg(long = "operator-user", env = "ORGACCESS_OPERATOR_USER",
          default_value = super::DEFAULT_OPERATOR_USER)]
    pub operator_user: String,
    /// The namespace controller's user name: trusted, and it deletes only in
    /// a namespace that is being deleted, so its deletes are judged as a
    /// teardown (the Organization goes with the namespace; Administrators may go too).
    #[arg(long = "namespace-controller-user", env = "ORGACCESS_NAMESPACE_CONTROLLER_USER",
          default_value = super::DEFAULT_NAMESPACE_CONTROLLER_USER)]
    pub namespace_controller_user: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            trusted_users: vec![super::DEFAULT_GARBAGE_COLLECTOR_USER.into()],
            trusted_groups: vec![super::DEFAULT_TRUSTED_GROUP.into()],
            operator_user: super::DEFAULT_OPERATOR_USER.into(),
            namespace_controller_user: super::DEFAULT_NAMESPACE_CONTROLLER_USER.into(),
        }
    }
}

impl Policy {
    /// Platform principals: the operator, the trusted users and groups.
    pub fn trusts(&self, user: &str, groups: &[String]) -> bool {
        user == self.operator_user
            || self.trusted_users.iter().any(|u| u == user)
            || groups.iter().any(|g| self.trusted_groups.contains(g))
    }

    /// Who asks, as configured: the operator, the namespace controller, a
    /// trusted principal, or an identity the organization maps.
    pub fn asker<'a>(&self, user: &'a str, groups: &'a [String]) -> Asker<'a> {
        if user == self.operator_user {
            Asker::Operator
        } else if user == self.namespace_controller_user {
            Asker::NamespaceController
        } else if self.trusts(user, groups) {
            Asker::Trusted
        } else {
            Asker::Identity { user, groups }
        }
    }
}

/// The answer to one request.
#[derive(Debug)]
pub struct Decision {
    /// The `AdmissionReview` to send back (always HTTP 200).
    pub body: Vec<u8>,
    pub allowed: bool,
    /// Kind and operation, for metrics (`unknown` when unreadable).
    pub kind: &'static str,
    pub operation: &'static str,
    /// The request could not be read.
    pub malformed: bool,
    /// What to record (for readable requests), and what its Event regards.
    pub activity: Option<(Activity, Option<ObjectReference>)>,
}

/// Decides one request body.
pub fn review(policy: &Policy, index: &Index, body: &[u8]) -> Decision {
    // Bounded before anything proportional to the body is built (limits.rs).
    if super::limits::json_values_within(body, super::limits::MAX_JSON_VALUES).is_none() {
        return malformed_body(
            body,
            format!(
                "the body holds more than {} JSON values, more than any object the apiserver accepts",
                super::limits::MAX_JSON_VALUES
            ),
        );
    }
    if let Err(why) = super::limits::spec_within_limits(body) {
        return malformed_body(body, why);
    }
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return malformed_body(body, format!("the body is not an AdmissionReview: {e}")),
    };
    let api_version = review.types.api_version.clone();
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(_) => {
            return malformed(
                "",
                &api_version,
                "the AdmissionReview has no request".into(),
            );
        }
    };
    let uid = request.uid.clone();
    match decide(policy, index, request) {
        Ok(d) => d.finish(&uid, &api_version),
        Err(why) => malformed(&uid, &api_version, why),
    }
}

/// The denial sent when deciding failed unexpectedly (a panic, caught).
pub fn review_failed(body: &[u8]) -> Decision {
    malformed_body(
        body,
        "the webhook failed while judging this request (see its log); denied".into(),
    )
}

/// The denial sent for a body that was read but not judged (busy, out of time).
pub fn refused(body: &[u8], why: String) -> Decision {
    let (uid, api_version) = super::limits::Probe::read(body);
    let message = format!("orgaccess admission: denied: {why}");
    Decision {
        body: answer(
            &uid,
            &api_version,
            false,
            Some((503, "ServiceUnavailable", &message)),
            &[],
        ),
        allowed: false,
        kind: "unknown",
        operation: "unknown",
        malformed: false,
        activity: None,
    }
}

/// The denial sent for a body that could not be read at all.
pub fn unreadable(why: String) -> Decision {
    malformed("", "", why)
}

/// A denial for a body that is not even a readable AdmissionReview: the uid
/// and apiVersion are taken from it if they can be.
fn malformed_body(body: &[u8], why: String) -> Decision {
    // Read without building a tree: a large body must not cost its size many times over.
    let (uid, api_version) = super::limits::Probe::read(body);
    malformed(&uid, &api_version, why)
}

fn malformed(uid: &str, api_version: &str, why: String) -> Decision {
    let message = format!("orgaccess admission: malformed request, denied: {why}");
    Decision {
        body: answer(
            uid,
            api_version,
            false,
            Some((400, "BadRequest", &message)),
            &[],
        ),
        allowed: false,
        kind: "unknown",
        operation: "unknown",
        malformed: true,
        activity: None,
    }
}

/// The answer `AdmissionReview`, in the request's apiVersion when it is one we know.
fn answer(
    uid: &str,
    api_version: &str,
    allowed: bool,
    status: Option<(u16, &str, &str)>,
    warnings: &[String],
) -> Vec<u8> {
    let api_version = match api_version {
        "admission.k8s.io/v1beta1" => "admission.k8s.io/v1beta1",
        _ => ADMISSION_V1,
    };
    let mut response = json!({ "uid": uid, "allowed": allowed });
    if let Some((code, reason, message)) = status {
        response["status"] = json!({
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        });
    }
    if !warnings.is_empty() {
        // kubectl prints each as `Warning: ...` (bounded by core::warnings).
        response["warnings"] = json!(warnings);
    }
    serde_json::to_vec(&json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "response": response,
    }))
    .expect("a JSON value serializes")
}

/// A readable request's outcome, before it is written out.
struct Outcome {
    kind: &'static str,
    operation: &'static str,
    allowed: bool,
    message: Option<String>,
    /// What is suspicious about an allowed change (`core::warnings`).
    warnings: Vec<String>,
    activity: Option<(Activity, Option<ObjectReference>)>,
}

impl Outcome {
    fn finish(self, uid: &str, api_version: &str) -> Decision {
        let status = self
            .message
            .as_deref()
            .filter(|_| !self.allowed)
            .map(|m| (403, "Forbidden", m));
        Decision {
            body: answer(uid, api_version, self.allowed, status, &self.warnings),
            allowed: self.allowed,
            kind: self.kind,
            operation: self.operation,
            malformed: false,
            activity: self.activity,
        }
    }
}

/// Reads an object of a kind; the spec must deserialize into the CRD type.
pub(super) fn read_object(
    kind: Kind,
    obj: DynamicObject,
    which: &str,
) -> Result<(Def, ObjectReference), String> {
    fn typed<K, S>(obj: DynamicObject, which: &str, make: impl FnOnce(S) -> K) -> Result<K, String>
    where
        K: kube::Resource,
        S: DeserializeOwned,
    {
        let DynamicObject {
            metadata, mut data, ..
        } = obj;
        let spec = data
            .get_mut("spec")
            .map(Value::take)
            .ok_or_else(|| format!("{which} has no spec"))?;
        let spec: S = serde_json::from_value(spec).map_err(|e| format!("{which}.spec: {e}"))?;
        let mut k = make(spec);
        *k.meta_mut() = metadata;
        Ok(k)
    }
    use crate::index::reference;
    Ok(match kind {
        Kind::Organization => {
            let o: Organization = typed(obj, which, |s| Organization::new("", s))?;
            (Def::Organization(OrgDef::from(&o)), reference(&o))
        }
        Kind::Group => {
            let g: Group = typed(obj, which, |s| Group::new("", s))?;
            (Def::Group(GroupDef::from(&g)), reference(&g))
        }
        Kind::Member => {
            let m: Member = typed(obj, which, |s| Member::new("", s))?;
            (Def::Member(MemberDef::from(&m)), reference(&m))
        }
        Kind::ApiKey => {
            let k: ApiKey = typed(obj, which, |s| ApiKey::new("", s))?;
            (Def::ApiKey(ApiKeyDef::from(&k)), reference(&k))
        }
        Kind::AccessReview => {
            let r: AccessReview = typed(obj, which, |s| AccessReview::new("", s))?;
            (Def::AccessReview(AccessReviewDef::from(&r)), reference(&r))
        }
    })
}

/// Decides one readable request: read it (kind, operation, objects), then
/// judge it with the core.
fn decide(
    policy: &Policy,
    index: &Index,
    req: AdmissionRequest<DynamicObject>,
) -> Result<Outcome, String> {
    Ok(match read_request(index, req)? {
        Read::Answered(outcome) => outcome,
        Read::ToJudge(request) => judge(policy, index, request),
    })
}

/// A request read and checked for shape. One lives for one request, on the
/// stack: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Read {
    /// Answered without the rules (a status write; caches not synced yet).
    Answered(Outcome),
    ToJudge(Request),
}

/// What a well-formed request asks.
struct Request {
    uid: String,
    kind: Kind,
    operation: Operation,
    op_name: &'static str,
    namespace: String,
    name: String,
    old: Option<(Def, ObjectReference)>,
    new: Option<(Def, ObjectReference)>,
    /// For an ApiKey update: what the stored key's status reports.
    old_key: Option<Reported>,
    username: String,
    groups: Vec<String>,
    dry_run: bool,
}

/// The kind a request is about: one of the five, in the served version.
fn kind_of(gvk: &kube::core::GroupVersionKind) -> Result<Kind, String> {
    let kind = match (gvk.group.as_str(), gvk.kind.as_str()) {
        (api::GROUP, "Organization") => Kind::Organization,
        (api::GROUP, "Group") => Kind::Group,
        (api::GROUP, "Member") => Kind::Member,
        (api::GROUP, "ApiKey") => Kind::ApiKey,
        (api::GROUP, "AccessReview") => Kind::AccessReview,
        _ => {
            return Err(format!(
                "kind {}/{} {} is not one this webhook judges (Organization, Group, Member, ApiKey, AccessReview in {})",
                gvk.group,
                gvk.version,
                gvk.kind,
                api::GROUP
            ));
        }
    };
    if gvk.version != "v1alpha1" {
        return Err(format!(
            "{}/{} {} is not a version this webhook reads; configure matchPolicy: Equivalent so requests arrive as v1alpha1",
            gvk.group, gvk.version, gvk.kind
        ));
    }
    Ok(kind)
}

/// The operation, and its name as the API spells it.
fn operation_of(op: &AdmissionOp) -> Result<(Operation, &'static str), String> {
    let operation = match op {
        AdmissionOp::Create => Operation::Create,
        AdmissionOp::Update => Operation::Update,
        AdmissionOp::Delete => Operation::Delete,
        AdmissionOp::Connect => return Err("CONNECT is not an operation on these kinds".into()),
    };
    Ok((operation, judge::operation_name(operation)))
}

/// Reads the request: which kind and operation, the objects, the name.
fn read_request(index: &Index, mut req: AdmissionRequest<DynamicObject>) -> Result<Read, String> {
    let kind = kind_of(&req.kind)?;
    let (operation, op_name) = operation_of(&req.operation)?;
    if let Some(sub) = req.sub_resource.as_deref() {
        if sub == "status" {
            // Status is the operator's; the rules judge specs. The webhook
            // configuration does not send status writes, this is a fallback.
            return Ok(Read::Answered(Outcome {
                kind: kind.as_str(),
                operation: op_name,
                allowed: true,
                message: None,
                warnings: Vec::new(),
                activity: None,
            }));
        }
        return Err(format!(
            "subresource '{sub}' is not one this webhook judges"
        ));
    }
    if !index.synced() {
        // An empty cache would map nobody and see no Organization: refuse
        // rather than judge on it. The readiness probe keeps traffic away.
        tracing::warn!(uid = %req.uid, "admission request before the caches synced; denied");
        return Ok(Read::Answered(Outcome {
            kind: kind.as_str(),
            operation: op_name,
            allowed: false,
            message: Some(
                "orgaccess admission: the webhook's caches have not synced yet; retry in a few seconds".into(),
            ),
            warnings: Vec::new(),
            activity: None,
        }));
    }
    let namespace = req
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .ok_or_else(|| {
            format!(
                "a {} is namespaced, but the request has no namespace",
                kind.as_str()
            )
        })?;

    let new = match operation {
        Operation::Create | Operation::Update => Some(read_object(
            kind,
            req.object.take().ok_or("the request has no object")?,
            "object",
        )?),
        Operation::Delete => None,
    };
    let mut old_key = None;
    let old = match operation {
        Operation::Update | Operation::Delete => {
            let obj = req
                .old_object
                .take()
                .ok_or("the request has no oldObject")?;
            if kind == Kind::ApiKey {
                old_key = Some(reported(&obj));
            }
            Some(read_object(kind, obj, "oldObject")?)
        }
        Operation::Create => None,
    };
    let name = if req.name.is_empty() {
        new.as_ref()
            .or(old.as_ref())
            .and_then(|(_, r)| r.name.clone())
            .unwrap_or_default()
    } else {
        req.name.clone()
    };

    Ok(Read::ToJudge(Request {
        uid: req.uid.clone(),
        kind,
        operation,
        op_name,
        namespace,
        name,
        old,
        new,
        old_key,
        username: req.user_info.username.clone().unwrap_or_default(),
        groups: req.user_info.groups.clone().unwrap_or_default(),
        dry_run: req.dry_run,
    }))
}

/// What a stored ApiKey's status reports (its generation, the generation
/// the status describes, whether it publishes a value's digest).
fn reported(obj: &DynamicObject) -> Reported {
    let status = obj.data.get("status");
    let field = |name: &str| status.and_then(|s| s.get(name)).filter(|v| !v.is_null());
    Reported {
        generation: obj.metadata.generation,
        observed_generation: field("observedGeneration").and_then(Value::as_i64),
        publishes_value: field("hash").is_some() || field("previousHash").is_some(),
    }
}

/// Judges a well-formed request with the pipeline every surface shares
/// ([`crate::judge`]), against the cached organization, and makes the
/// answer's parts and the activity record.
fn judge(policy: &Policy, index: &Index, r: Request) -> Outcome {
    let snapshot = index.namespace(&r.namespace);
    let old = r.old.as_ref().map(|(d, _)| d);
    let new = r.new.as_ref().map(|(d, _)| d);
    let request = judge::Request {
        kind: r.kind,
        operation: r.operation,
        namespace: &r.namespace,
        name: &r.name,
        old,
        new,
        stored_key: r.old_key.as_ref(),
        mutated: true,
    };
    let asker = policy.asker(&r.username, &r.groups);
    let judgement = judge::judge(&*snapshot, asker, &request, crate::clock::now());
    let allowed = judgement.allowed();
    // The Event regards the object, or its Organization when the object does
    // not exist (a refused create).
    let object_ref = r.new.map(|(_, o)| o).or(r.old.map(|(_, o)| o));
    let regarding = if r.operation == Operation::Create && !allowed {
        snapshot.organization.clone().or(object_ref)
    } else {
        object_ref
    };
    let activity = Activity::of(
        &judgement,
        Asked {
            uid: r.uid,
            user: r.username,
            groups: r.groups,
            operation: r.op_name,
            kind: r.kind.as_str(),
            namespace: r.namespace,
            name: r.name,
            dry_run: r.dry_run,
        },
    );
    Outcome {
        kind: r.kind.as_str(),
        operation: r.op_name,
        allowed,
        message: judgement.message,
        warnings: judgement.warnings,
        activity: Some((activity, regarding)),
    }
}

#[cfg(test)]
mod tests {
    use kube::core::GroupVersionKind;

    use super::*;

    #[test]
    fn who_asks_is_decided_by_the_policy_before_the_organization() {
        let policy = Policy {
            trusted_users: vec!["flux".into()],
            ..Policy::default()
        };
        let none: Vec<String> = Vec::new();
        let masters = vec![super::super::DEFAULT_TRUSTED_GROUP.to_string()];
        let cases: [(&str, &[String], &str); 5] = [
            (super::super::DEFAULT_OPERATOR_USER, &none, "Operator"),
            (
                super::super::DEFAULT_NAMESPACE_CONTROLLER_USER,
                &none,
                "NamespaceController",
            ),
            ("flux", &none, "Trusted"),
            ("ada", &masters, "Trusted"),
            ("ada", &none, "Identity"),
        ];
        for (user, groups, want) in cases {
            let got = format!("{:?}", policy.asker(user, groups));
            assert!(got.starts_with(want), "{user}: {got}");
        }
    }

    #[test]
    fn only_the_four_kinds_in_the_served_version_are_judged() {
        let gvk =
            |group: &str, version: &str, kind: &str| GroupVersionKind::gvk(group, version, kind);
        assert_eq!(
            kind_of(&gvk(api::GROUP, "v1alpha1", "Member")),
            Ok(Kind::Member)
        );
        let other_kind = kind_of(&gvk(api::GROUP, "v1alpha1", "Secret")).unwrap_err();
        assert!(
            other_kind.contains("not one this webhook judges"),
            "{other_kind}"
        );
        let other_group = kind_of(&gvk("apps", "v1alpha1", "Group")).unwrap_err();
        assert!(
            other_group.contains("not one this webhook judges"),
            "{other_group}"
        );
        let other_version = kind_of(&gvk(api::GROUP, "v1", "Group")).unwrap_err();
        assert!(
            other_version.contains("matchPolicy: Equivalent"),
            "{other_version}"
        );
    }

    #[test]
    fn operations_are_named_as_the_api_names_them() {
        assert_eq!(
            operation_of(&AdmissionOp::Update),
            Ok((Operation::Update, "UPDATE"))
        );
        assert!(operation_of(&AdmissionOp::Connect).is_err());
    }

    #[test]
    fn a_stored_key_reports_its_generations_and_whether_it_publishes_a_value() {
        let key = |status: Value| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "orgaccess.dev/v1alpha1", "kind": "ApiKey",
                "metadata": {"name": "k", "generation": 3},
                "status": status,
            }))
            .unwrap()
        };
        let r = reported(&key(json!({"observedGeneration": 2, "hash": "sha256:x"})));
        assert_eq!(
            (r.generation, r.observed_generation, r.publishes_value),
            (Some(3), Some(2), true)
        );
        let r = reported(&key(json!({"observedGeneration": 3, "hash": null})));
        assert_eq!((r.observed_generation, r.publishes_value), (Some(3), false));
    }

    #[test]
    fn answers_carry_the_uid_status_and_warnings_in_the_request_s_version() {
        let denied: Value = serde_json::from_slice(&answer(
            "u1",
            "admission.k8s.io/v1beta1",
            false,
            Some((403, "Forbidden", "no")),
            &[],
        ))
        .unwrap();
        assert_eq!(denied["apiVersion"], "admission.k8s.io/v1beta1");
        assert_eq!(denied["response"]["uid"], "u1");
        assert_eq!(denied["response"]["status"]["code"], 403);
        assert!(denied["response"]["warnings"].is_null());
        let allowed: Value =
            serde_json::from_slice(&answer("u2", "bogus", true, None, &["w".into()])).unwrap();
        assert_eq!(allowed["apiVersion"], ADMISSION_V1);
        assert!(allowed["response"]["status"].is_null());
        assert_eq!(allowed["response"]["warnings"], json!(["w"]));
    }
}
