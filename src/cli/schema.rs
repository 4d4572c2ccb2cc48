//! The CRDs' own schema, checked offline, so that `orgaccess check` refuses
//! what the apiserver refuses without a hand-kept copy of its rules.
//!
//! The schema is the one [`crate::api::crds`] generates (what `crds/` holds
//! and the apiserver enforces). Two passes, like the apiserver's:
//! - the structural bounds: `required`, `enum`, `minLength`/`maxLength`
//!   (counted in characters), `maxItems`, `minimum`/`maximum`, `nullable`;
//! - the CEL rules (`x-kubernetes-validations`), evaluated with kube-rs's
//!   `kube-cel`, only when the structure is sound (a rule over a malformed
//!   value says nothing useful).
//!
//! `tests/operations/crd_limits.rs` holds the two to the real apiserver: every object
//! it refuses there is refused here.

use std::collections::HashMap;

use kube_cel::{CompiledSchema, Validator, compile_schema};
use serde_json::Value;

use crate::core::model::Kind;

/// One way an object breaks its kind's schema: the field and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaProblem {
    pub field: String,
    pub message: String,
}

/// Problems reported per object at most: a hostile manifest with a million
/// bad items gets a bounded answer.
const MAX_PROBLEMS: usize = 20;

struct Schemas {
    by_kind: HashMap<Kind, (Value, CompiledSchema)>,
    validator: Validator,
}

thread_local! {
    // Compiled once per thread: `orgaccess check` runs on one thread, and the
    // compiled CEL programs are not shareable across threads.
    static SCHEMAS: Schemas = Schemas::load();
}

impl Schemas {
    fn load() -> Schemas {
        let mut by_kind = HashMap::new();
        for crd in crate::api::crds() {
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.as_str() == crd.spec.names.kind)
                .expect("a CRD of one of the four kinds");
            let schema = crd
                .spec
                .versions
                .first()
                .and_then(|v| v.schema.as_ref())
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .map(|s| serde_json::to_value(s).expect("a schema serializes"))
                .expect("every CRD has a schema");
            let compiled = compile_schema(&schema);
            by_kind.insert(kind, (schema, compiled));
        }
        Schemas {
            by_kind,
            validator: Validator::new(),
        }
    }
}

/// What `object` (a whole manifest of `kind`) breaks of its schema.
pub fn problems(kind: Kind, object: &Value) -> Vec<SchemaProblem> {
    SCHEMAS.with(|schemas| {
        let (schema, compiled) = &schemas.by_kind[&kind];
        let mut out = Vec::new();
        structural(schema, object, "", &mut out);
        if out.is_empty()
            && let Err(errors) = schemas.validator.validate_compiled(compiled, object, None)
        {
            out.extend(errors.iter().map(|e| SchemaProblem {
                field: e.field_path.clone(),
                message: e.message.clone(),
            }));
        }
        out.truncate(MAX_PROBLEMS);
        out
    })
}

/// The structural bounds of `schema` on `value`, at `path`.
fn structural(schema: &Value, value: &Value, path: &str, out: &mut Vec<SchemaProblem>) {
    if out.len() >= MAX_PROBLEMS {
        return;
    }
    let mut problem = |message: String| {
        out.push(SchemaProblem {
            field: path.to_string(),
            message,
        })
    };
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            problem("must not be null".into());
        }
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
        problem(format!("must be one of {} (got {value})", names.join(", ")));
        return;
    }
    match (schema["type"].as_str(), value) {
        (Some("object"), Value::Object(fields)) => object(schema, fields, path, out),
        (Some("array"), Value::Array(items)) => {
            if let Some(max) = schema["maxItems"].as_u64()
                && items.len() as u64 > max
            {
                problem(format!("has at most {max} items (got {})", items.len()));
                return;
            }
            if let Some((i, key)) = duplicate_in_list(schema, items) {
                // The apiserver's words: the item's path and the repeated key.
                out.push(SchemaProblem {
                    field: format!("{path}[{i}]"),
                    message: format!(
                        "Duplicate value: {key}: a list keyed by its items' keys holds each key once"
                    ),
                });
                return;
            }
            for (i, item) in items.iter().enumerate() {
                structural(&schema["items"], item, &format!("{path}[{i}]"), out);
            }
        }
        (Some("string"), Value::String(s)) => {
            let chars = s.chars().count() as u64;
            if let Some(max) = schema["maxLength"].as_u64()
                && chars > max
            {
                problem(format!("has at most {max} characters (got {chars})"));
            } else if let Some(min) = schema["minLength"].as_u64()
                && chars < min
            {
                problem(format!("has at least {min} character(s)"));
            }
        }
        (Some("integer" | "number"), Value::Number(n)) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            if let Some(max) = schema["maximum"].as_f64()
                && n > max
            {
                problem(format!("must be at most {max} (got {n})"));
            } else if let Some(min) = schema["minimum"].as_f64()
                && n < min
            {
                problem(format!("must be at least {min} (got {n})"));
            }
        }
        // Types are the deserializer's business (it reports them with their
        // line); a schema without a type (int-or-string, preserved fields)
        // bounds nothing here.
        _ => {}
    }
}

/// The first item of a `map` or `set` list (`x-kubernetes-list-type`) that
/// repeats an earlier one's keys (map: the object of its key fields) or
/// value (set), with what it repeats.
fn duplicate_in_list(schema: &Value, items: &[Value]) -> Option<(usize, Value)> {
    let key = |item: &Value| -> Value {
        match schema["x-kubernetes-list-type"].as_str() {
            Some("map") => schema["x-kubernetes-list-map-keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|k| (k.to_string(), item[k].clone()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            _ => item.clone(),
        }
    };
    if !matches!(
        schema["x-kubernetes-list-type"].as_str(),
        Some("map" | "set")
    ) {
        return None;
    }
    let mut seen = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let k = key(item);
        if seen.contains(&k) {
            return Some((i, k));
        }
        seen.push(k);
    }
    None
}

fn object(
    schema: &Value,
    fields: &serde_json::Map<String, Value>,
    path: &str,
    out: &mut Vec<SchemaProblem>,
) {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    for required in schema["required"].as_array().into_iter().flatten() {
        if let Some(key) = required.as_str()
            && !fields.contains_key(key)
        {
            out.push(SchemaProblem {
                field: at(key),
                message: "is required".into(),
            });
        }
    }
    if let Some(max) = schema["maxProperties"].as_u64()
        && fields.len() as u64 > max
    {
        out.push(SchemaProblem {
            field: path.to_string(),
            message: format!("has at most {max} properties (got {})", fields.len()),
        });
        return;
    }
    for (key, value) in fields {
        let field_schema = match schema["properties"].get(key) {
            Some(s) => s,
            None => match &schema["additionalProperties"] {
                s @ Value::Object(_) => s,
                // Unknown fields are reported on their own (unknown_fields).
                _ => continue,
            },
        };
        structural(field_schema, value, &at(key), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(spec: Value) -> Value {
        json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Group",
               "metadata": {"name": "g", "namespace": "ns"}, "spec": spec})
    }

    #[test]
    fn a_valid_group_has_no_problems() {
        let g = group(json!({"displayName": "G", "privileges": [
            {"service": "Organization", "domain": "Organization", "level": "View"}]}));
        assert_eq!(problems(Kind::Group, &g), vec![]);
    }

    #[test]
    fn the_cel_rule_on_identity_sets_is_evaluated() {
        let g = group(json!({"displayName": "G", "identitySets": [
            {"ssoGroup": "a", "openIdDomain": "b.com"}]}));
        let found = problems(Kind::Group, &g);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].field.starts_with("spec.identitySets"), "{found:?}");
        assert!(found[0].message.contains("exactly one"), "{found:?}");
    }

    #[test]
    fn structural_bounds_are_checked_before_cel() {
        let long = "x".repeat(10_000);
        let g = group(json!({"displayName": long}));
        let found = problems(Kind::Group, &g);
        assert_eq!(found[0].field, "spec.displayName", "{found:?}");
        assert!(found[0].message.starts_with("has at most"), "{found:?}");
    }

    #[test]
    fn the_root_rule_on_api_key_names_is_evaluated() {
        let name = "k".repeat(250);
        let key = json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "ApiKey",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"displayName": "K", "template": "Custom"}});
        let found = problems(Kind::ApiKey, &key);
        assert!(
            found.iter().any(|p| p.message.contains("at most")),
            "{found:?}"
        );
    }

    #[test]
    fn membership_ends_are_checked_in_cel() {
        let member = |spec: Value| {
            json!({"apiVersion": "orgaccess.dev/v1alpha1", "kind": "Member",
                   "metadata": {"name": "m", "namespace": "ns"},
                   "spec": {"identity": {"provider": "Email", "username": "m@x.example"},
                            "groups": ["g"], "accepted": true}})
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                for (k, v) in spec.as_object().unwrap() {
                    o["spec"][k] = v.clone();
                }
                Value::Object(o)
            })
            .unwrap()
        };
        let good = member(json!({"until": "2027-01-31T00:00:00Z", "groupUntil": {"g": "P30D"}}));
        assert_eq!(problems(Kind::Member, &good), vec![]);
        for bad in [
            json!({"until": "next week"}),
            json!({"groupUntil": {"g": "30 days"}}),
        ] {
            let found = problems(Kind::Member, &member(bad.clone()));
            assert!(
                found.iter().any(|p| p.message.contains("RFC 3339")),
                "{bad}: {found:?}"
            );
        }
        let many: serde_json::Map<String, Value> =
            (0..300).map(|i| (format!("g{i}"), json!("P1D"))).collect();
        let found = problems(Kind::Member, &member(json!({"groupUntil": many})));
        assert!(
            found.iter().any(|p| p.message.contains("at most 256")),
            "{found:?}"
        );
    }

    #[test]
    fn a_hostile_list_gets_a_bounded_answer() {
        let sets: Vec<Value> = (0..5000).map(|_| json!({})).collect();
        let g = group(json!({"displayName": "G", "identitySets": sets}));
        assert!(problems(Kind::Group, &g).len() <= MAX_PROBLEMS);
    }
}
