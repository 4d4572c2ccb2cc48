//! The mutating half of admission: writes on every Member, Group and ApiKey
//! the record of who set its bindings (`orgaccess.dev/bound-by`; the core's
//! `bindings.rs` says what it means and how a change updates it). The
//! validating half (`review.rs`, rule `BindingsRecorded`) refuses any other
//! record, so the record is what admission saw, whatever the client sends.
//!
//! What a request names itself — and so takes over, when a trusted principal
//! sends it — is read from the object the apiserver built
//! ([`asserted`]): the fields its server-side apply owns in
//! `metadata.managedFields` (an entry under this request's field manager,
//! operation Apply, that this request wrote), or the manifest of a
//! client-side apply (`kubectl.kubernetes.io/last-applied-configuration`,
//! when this request wrote it). A field manager's name alone proves nothing
//! (any client chooses it): only entries and annotations this very request
//! produced count.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview, Operation as AdmissionOp};
use serde_json::{Value, json};

use super::review::{Policy, read_object};
use crate::core::bindings::{self, Asserted, BoundBy};
use crate::core::change::Def;
use crate::core::model::Kind;
use crate::core::rules::{self, Change, Operation, Requester};

/// kubectl's client-side apply record of the manifest it applied.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Answers one mutating review body: allowed, with a JSON patch that sets the
/// record when it differs from what the object carries. A body that cannot be
/// read is refused (the validating half would refuse it too).
pub fn mutate(policy: &Policy, body: &[u8]) -> Vec<u8> {
    let (uid, api_version) = super::limits::Probe::read(body);
    let refuse = |why: String| answer(&uid, &api_version, Err(why));
    if super::limits::json_values_within(body, super::limits::MAX_JSON_VALUES).is_none() {
        return refuse(
            "the body holds more JSON values than any object the apiserver accepts".into(),
        );
    }
    if let Err(why) = super::limits::spec_within_limits(body) {
        return refuse(why);
    }
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return refuse(format!("the body is not an AdmissionReview: {e}")),
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(_) => return refuse("the AdmissionReview has no request".into()),
    };
    match patch_for(policy, request) {
        Ok(patch) => answer(&uid, &api_version, Ok(patch)),
        Err(why) => refuse(why),
    }
}

/// A review body as the apiserver sends it to the validating half after
/// this mutating half answered it: `request.object` with the record written.
/// For callers that play the apiserver in process (tests, benchmarks, the
/// fuzzer); a body this half refuses, or cannot read, is returned unchanged.
pub fn mutated_review(policy: &Policy, body: &[u8]) -> Vec<u8> {
    let Ok(mut review) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let Some(request) = serde_json::from_value::<AdmissionReview<DynamicObject>>(review.clone())
        .ok()
        .and_then(|r| r.try_into().ok())
    else {
        return body.to_vec();
    };
    let Ok(Some(patch)) = patch_for(policy, request) else {
        return body.to_vec();
    };
    let Some(object) = review.pointer_mut("/request/object") else {
        return body.to_vec();
    };
    for op in patch.as_array().into_iter().flatten() {
        let path = op["path"].as_str().unwrap_or_default();
        let annotations = &mut object["metadata"]["annotations"];
        match (op["op"].as_str(), path) {
            (Some("add"), "/metadata/annotations") => *annotations = op["value"].clone(),
            (Some("add"), _) => annotations[bindings::ANNOTATION] = op["value"].clone(),
            (Some("remove"), _) => {
                if let Some(map) = annotations.as_object_mut() {
                    map.remove(bindings::ANNOTATION);
                }
            }
            _ => {}
        }
    }
    serde_json::to_vec(&review).unwrap_or_else(|_| body.to_vec())
}

/// The JSON patch for one request (`None`: nothing to change).
fn patch_for(
    policy: &Policy,
    mut req: AdmissionRequest<DynamicObject>,
) -> Result<Option<Value>, String> {
    let operation = match req.operation {
        AdmissionOp::Create => Operation::Create,
        AdmissionOp::Update => Operation::Update,
        _ => return Ok(None),
    };
    if req.sub_resource.is_some() {
        return Ok(None);
    }
    let kind = match (req.kind.group.as_str(), req.kind.kind.as_str()) {
        (crate::api::GROUP, "Group") => Kind::Group,
        (crate::api::GROUP, "Member") => Kind::Member,
        (crate::api::GROUP, "ApiKey") => Kind::ApiKey,
        _ => return Ok(None),
    };
    let new_obj = req.object.take().ok_or("the request has no object")?;
    let old_obj = req.old_object.take();
    let new_meta = new_obj.metadata.clone();
    let old_meta = old_obj.as_ref().map(|o| o.metadata.clone());
    let field_manager = req
        .options
        .as_ref()
        .and_then(|o| serde_json::to_value(o).ok())
        .and_then(|o| {
            o.get("fieldManager")
                .and_then(Value::as_str)
                .map(String::from)
        });
    let new = read_object(kind, new_obj, "object")?.0;
    let old = match (operation, old_obj) {
        (Operation::Update, Some(o)) => Some(read_object(kind, o, "oldObject")?.0),
        (Operation::Update, None) => return Err("the request has no oldObject".into()),
        _ => None,
    };
    let username = req.user_info.username.clone().unwrap_or_default();
    let groups = req.user_info.groups.clone().unwrap_or_default();
    let requester =
        if username == policy.namespace_controller_user || policy.trusts(&username, &groups) {
            Requester::Trusted
        } else {
            Requester::Unmapped { user: username }
        };
    let new_groups = match &new {
        Def::Member(m) => m.groups.clone(),
        _ => Vec::new(),
    };
    let asserted = asserted(
        &new_meta,
        old_meta.as_ref(),
        field_manager.as_deref(),
        &new_groups,
    );
    let change = Change {
        operation,
        name: "",
        old: old.as_ref().map(Def::object),
        new: Some(new.object()),
    };
    let Some(expected) = rules::bindings_after(&change, &requester, &asserted) else {
        return Ok(None);
    };
    let written = bindings::parse(
        new_meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(bindings::ANNOTATION))
            .map(String::as_str),
    );
    let record: BoundBy = match requester {
        // A trusted principal may drop entries (it vouches for those
        // bindings), never add or change one.
        Requester::Trusted => written
            .into_iter()
            .filter(|(k, v)| expected.get(k) == Some(v))
            .collect(),
        _ => expected,
    };
    Ok(record_patch(&new_meta, &record))
}

/// The JSON patch that makes the annotation say `record`, if it does not.
pub fn record_patch(meta: &ObjectMeta, record: &BoundBy) -> Option<Value> {
    let current = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(bindings::ANNOTATION));
    let wanted = bindings::render(record);
    if current == wanted.as_ref() {
        return None;
    }
    let path = format!(
        "/metadata/annotations/{}",
        bindings::ANNOTATION.replace('~', "~0").replace('/', "~1")
    );
    Some(match (wanted, meta.annotations.is_some()) {
        (None, _) => json!([{ "op": "remove", "path": path }]),
        (Some(v), true) => json!([{ "op": "add", "path": path, "value": v }]),
        (Some(v), false) => json!([{
            "op": "add",
            "path": "/metadata/annotations",
            "value": { bindings::ANNOTATION: v },
        }]),
    })
}

/// The binding keys this request names itself: fields owned by its own
/// server-side apply entry (written by this request), or named in a
/// client-side apply manifest this request recorded.
pub fn asserted(
    new: &ObjectMeta,
    old: Option<&ObjectMeta>,
    field_manager: Option<&str>,
    new_groups: &[String],
) -> Asserted {
    let mut out = Asserted::new();
    if let Some(manager) = field_manager {
        let entries = new.managed_fields.iter().flatten();
        for entry in entries.filter(|e| {
            e.manager.as_deref() == Some(manager) && e.operation.as_deref() == Some("Apply")
        }) {
            // The same entry, unchanged since before this request, is not
            // this request's: someone may have used the same manager name.
            let stale = old
                .and_then(|o| o.managed_fields.as_ref())
                .is_some_and(|old_entries| old_entries.iter().any(|o| same_entry(o, entry)));
            if stale {
                continue;
            }
            if let Some(spec) = entry.fields_v1.as_ref().and_then(|f| f.0.get("f:spec")) {
                owned_bindings(spec, new_groups, &mut out);
            }
        }
    }
    let last_applied = |m: &ObjectMeta| {
        m.annotations
            .as_ref()
            .and_then(|a| a.get(LAST_APPLIED))
            .cloned()
    };
    let manifest = last_applied(new);
    if manifest.is_some()
        && manifest != old.and_then(last_applied)
        && let Some(spec) = manifest
            .as_deref()
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
            .and_then(|m| m.get("spec").cloned())
    {
        for key in [
            bindings::SUBJECTS,
            bindings::IDENTITY,
            bindings::ACCEPTED,
            bindings::UNTIL,
            bindings::IDENTITY_SETS,
            bindings::ENABLED,
            bindings::PRIVILEGES,
            bindings::TEMPLATE,
            bindings::ACCESS,
        ] {
            if spec.get(key).is_some() {
                out.insert(key.to_string());
            }
        }
        for g in spec
            .get("groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(g) = g.as_str() {
                out.insert(bindings::invitation(g));
            }
        }
    }
    out
}

fn same_entry(a: &ManagedFieldsEntry, b: &ManagedFieldsEntry) -> bool {
    a.manager == b.manager
        && a.operation == b.operation
        && a.time == b.time
        && a.fields_v1 == b.fields_v1
}

/// The binding keys a `fieldsV1` `f:spec` set owns.
fn owned_bindings(spec: &Value, new_groups: &[String], out: &mut Asserted) {
    for key in [
        bindings::SUBJECTS,
        bindings::IDENTITY,
        bindings::ACCEPTED,
        bindings::UNTIL,
        bindings::IDENTITY_SETS,
        bindings::ENABLED,
        bindings::PRIVILEGES,
        bindings::TEMPLATE,
        bindings::ACCESS,
    ] {
        if spec.get(format!("f:{key}")).is_some() {
            out.insert(key.to_string());
        }
    }
    if let Some(groups) = spec.get("f:groups").and_then(Value::as_object) {
        // A set list owns each value (`v:"ops"`); an atomic one all of them.
        let values: Vec<String> = groups
            .keys()
            .filter_map(|k| k.strip_prefix("v:"))
            .filter_map(|v| serde_json::from_str::<String>(v).ok())
            .collect();
        if values.is_empty() {
            out.extend(new_groups.iter().map(|g| bindings::invitation(g)));
        } else {
            out.extend(values.iter().map(|g| bindings::invitation(g)));
        }
    }
}

/// The mutating answer: allowed with an optional patch, or refused.
fn answer(uid: &str, api_version: &str, result: Result<Option<Value>, String>) -> Vec<u8> {
    let api_version = match api_version {
        "admission.k8s.io/v1beta1" => "admission.k8s.io/v1beta1",
        _ => "admission.k8s.io/v1",
    };
    let response = match result {
        Ok(None) => json!({ "uid": uid, "allowed": true }),
        Ok(Some(patch)) => json!({
            "uid": uid,
            "allowed": true,
            "patchType": "JSONPatch",
            "patch": k8s_openapi::ByteString(serde_json::to_vec(&patch).expect("JSON")),
        }),
        Err(why) => json!({
            "uid": uid,
            "allowed": false,
            "status": {
                "status": "Failure",
                "code": 400,
                "reason": "BadRequest",
                "message": format!("orgaccess admission (recording bindings): malformed request, denied: {why}"),
            },
        }),
    };
    serde_json::to_vec(&json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "response": response,
    }))
    .expect("a JSON value serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, Time};

    fn entry(manager: &str, op: &str, fields: Value, t: i64) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some(op.into()),
            fields_v1: Some(FieldsV1(fields)),
            time: Some(Time(jiff::Timestamp::from_second(t).unwrap())),
            ..Default::default()
        }
    }

    fn meta(entries: Vec<ManagedFieldsEntry>, last_applied: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            managed_fields: Some(entries),
            annotations: last_applied.map(|l| [(LAST_APPLIED.to_string(), l.to_string())].into()),
            ..Default::default()
        }
    }

    /// One row: case, new, old, the request's field manager, what it asserts.
    type Case<'a> = (
        &'a str,
        ObjectMeta,
        Option<ObjectMeta>,
        Option<&'a str>,
        Vec<&'a str>,
    );

    #[test]
    fn what_a_request_names_itself() {
        let groups_spec =
            json!({"f:spec": {"f:groups": {"v:\"administrators\"": {}}, "f:accepted": {}}});
        let subjects_spec = json!({"f:spec": {"f:subjects": {}}});
        let cases: Vec<Case> = vec![
            (
                "server-side apply owns what it names",
                meta(
                    vec![entry("argocd-controller", "Apply", groups_spec.clone(), 2)],
                    None,
                ),
                Some(meta(vec![], None)),
                Some("argocd-controller"),
                vec!["accepted", "groups/administrators"],
            ),
            (
                "another manager's fields are not this request's",
                meta(
                    vec![
                        entry("argocd-controller", "Apply", groups_spec.clone(), 2),
                        entry("kubectl-create", "Update", subjects_spec.clone(), 1),
                    ],
                    None,
                ),
                Some(meta(
                    vec![entry("kubectl-create", "Update", subjects_spec.clone(), 1)],
                    None,
                )),
                Some("argocd-controller"),
                vec!["accepted", "groups/administrators"],
            ),
            (
                "an Apply entry left unchanged under a borrowed name is not this request's",
                meta(
                    vec![entry(
                        "argocd-controller",
                        "Apply",
                        subjects_spec.clone(),
                        1,
                    )],
                    None,
                ),
                Some(meta(
                    vec![entry(
                        "argocd-controller",
                        "Apply",
                        subjects_spec.clone(),
                        1,
                    )],
                    None,
                )),
                Some("argocd-controller"),
                vec![],
            ),
            (
                "an Update entry under the same name asserts nothing",
                meta(
                    vec![entry(
                        "argocd-controller",
                        "Update",
                        subjects_spec.clone(),
                        2,
                    )],
                    None,
                ),
                Some(meta(vec![], None)),
                Some("argocd-controller"),
                vec![],
            ),
            (
                "a client-side apply names what its manifest holds",
                meta(
                    vec![],
                    Some(
                        r#"{"spec":{"groups":["administrators"],"accepted":true,"identity":{"provider":"Email","username":"d@x"}}}"#,
                    ),
                ),
                Some(meta(vec![], Some(r#"{"spec":{"groups":[]}}"#))),
                Some("kubectl-client-side-apply"),
                vec!["accepted", "groups/administrators", "identity"],
            ),
            (
                "a manifest recorded earlier by someone else asserts nothing",
                meta(vec![], Some(r#"{"spec":{"subjects":[]}}"#)),
                Some(meta(vec![], Some(r#"{"spec":{"subjects":[]}}"#))),
                Some("kubectl-patch"),
                vec![],
            ),
        ];
        for (case, new, old, manager, want) in cases {
            let got = asserted(&new, old.as_ref(), manager, &["administrators".into()]);
            let want: Asserted = want.into_iter().map(String::from).collect();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn the_patch_sets_or_removes_the_record() {
        let record: BoundBy = [("subjects".to_string(), "alice".to_string())].into();
        let bare = ObjectMeta::default();
        let p = record_patch(&bare, &record).unwrap();
        assert_eq!(p[0]["path"], "/metadata/annotations");
        let annotated = ObjectMeta {
            annotations: Some([("x".to_string(), "y".to_string())].into()),
            ..Default::default()
        };
        let p = record_patch(&annotated, &record).unwrap();
        assert_eq!(
            p[0]["path"],
            "/metadata/annotations/orgaccess.dev~1bound-by"
        );
        let recorded = ObjectMeta {
            annotations: Some(
                [(
                    bindings::ANNOTATION.to_string(),
                    r#"{"subjects":"alice"}"#.to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        };
        assert_eq!(record_patch(&recorded, &record), None);
        assert_eq!(
            record_patch(&recorded, &BoundBy::new()).unwrap()[0]["op"],
            "remove"
        );
    }
}
