//! Bounds on what one admission request may cost, whatever it contains.
//!
//! The apiserver never sends more than its request limit (3 MiB) twice (object
//! and oldObject) in one AdmissionReview, so everything here is sized to that
//! and checked before anything proportional to the body is built:
//!
//! - [`MAX_BODY`]: bytes read at most;
//! - [`json_values_within`]: a linear scan that counts JSON values, so a body
//!   of millions of tiny values (`[0,0,0,…]`) is refused before it is parsed
//!   into a tree that would take tens of times its size;
//! - [`Probe`]: the uid and apiVersion of a body that is not an AdmissionReview,
//!   read without building a tree (every other field is skipped);
//! - [`MAX_RESOURCES_PER_PRIVILEGE`]: the CRD's own maxItems, enforced here too
//!   because a direct POST skips the schema;
//! - [`MAX_GROUPS`]: the requester's groups (`userInfo.groups`), counted before
//!   any list of them is built.
//!
//! The typed pre-check ([`spec_within_limits`]) reads what it bounds without a
//! tree; a body it cannot read (not JSON, a field of the wrong type, a key
//! given twice) is refused, never passed on: a bound that a second `"spec"`
//! key could step around is no bound.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Largest request body read: two copies of the apiserver's 3 MiB object limit,
/// plus the review's own fields.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// Most JSON values (objects, arrays, strings, numbers, literals) in a body.
/// A real object under the apiserver's 3 MiB limit holds about one value per
/// 10 bytes or more (names, levels, keys): ~315,000 per copy, two copies
/// ~630,000. Parsed, a value costs up to ~90 bytes: 750,000 is ~70 MB.
pub const MAX_JSON_VALUES: usize = 750_000;

/// Most per-resource entries in one Custom privilege (the CRD's maxItems).
pub const MAX_RESOURCES_PER_PRIVILEGE: usize = 1000;

/// Most privileges in one Group or ApiKey (the CRD's maxItems).
pub const MAX_PRIVILEGES: usize = 200;

/// Most groups a requester may carry (`userInfo.groups` of a review,
/// `principal.groups` of a decision question). Identity providers send tens
/// to a few hundred; only the groups some Member names as a subject are ever
/// read (`index::Namespace::requester`), but even counting millions is work
/// nobody asked for.
pub const MAX_GROUPS: usize = 4096;

/// The denial for a requester with more than [`MAX_GROUPS`] groups.
pub fn too_many_groups(field: &str, n: usize) -> String {
    format!(
        "{field} lists {n} groups; at most {MAX_GROUPS} are read (only the groups an organization's Members name as subjects count)"
    )
}

/// Counts the JSON values in `body`, stopping at `max`: `None` if there are
/// more. Strings (with escapes) are skipped as one value; the body need not be
/// valid JSON (the parser that follows says what is wrong with it).
pub fn json_values_within(body: &[u8], max: usize) -> Option<usize> {
    let mut count = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    // A scalar (number or literal) in progress.
    let mut in_scalar = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        let starts = match b {
            b'"' => {
                in_string = true;
                in_scalar = false;
                true
            }
            b'{' | b'[' => {
                in_scalar = false;
                true
            }
            b',' | b':' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r' => {
                in_scalar = false;
                false
            }
            _ => !std::mem::replace(&mut in_scalar, true),
        };
        if starts {
            count += 1;
            if count > max {
                return None;
            }
        }
    }
    Some(count)
}

/// What can be read from any JSON body about the review it claims to be.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Probe {
    #[serde(default, rename = "apiVersion")]
    pub api_version: MaybeString,
    #[serde(default)]
    pub request: MaybeRequest,
}

impl Probe {
    /// The uid and apiVersion of `body`, empty when it has none (or is not JSON).
    pub fn read(body: &[u8]) -> (String, String) {
        match serde_json::from_slice::<Probe>(body) {
            Ok(p) => (
                p.request.0.unwrap_or_default(),
                p.api_version.0.unwrap_or_default(),
            ),
            Err(_) => Default::default(),
        }
    }
}

/// A string, or anything else (skipped, read as `None`).
#[derive(Debug, Default)]
pub struct MaybeString(pub Option<String>);

impl<'de> serde::Deserialize<'de> for MaybeString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MaybeString, E> {
                // A uid is short; a long string is not one.
                Ok(MaybeString((s.len() <= 128).then(|| s.to_string())))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<MaybeString, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<MaybeString, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `request` of a review: only its `uid` is read, anything else skipped.
#[derive(Debug, Default)]
pub struct MaybeRequest(pub Option<String>);

impl<'de> serde::Deserialize<'de> for MaybeRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeRequest;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<MaybeRequest, A::Error> {
                let mut uid = None;
                while let Some(key) = a.next_key::<MaybeString>()? {
                    if key.0.as_deref() == Some("uid") {
                        uid = a.next_value::<MaybeString>()?.0;
                    } else {
                        a.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(MaybeRequest(uid))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<MaybeRequest, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeRequest(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<MaybeRequest, E> {
                Ok(MaybeRequest(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeRequest, E> {
                Ok(MaybeRequest(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeRequest, E> {
                Ok(MaybeRequest(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeRequest, E> {
                Ok(MaybeRequest(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeRequest, E> {
                Ok(MaybeRequest(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeRequest, E> {
                Ok(MaybeRequest(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Refuses a body whose Custom privileges name more resources, or that lists
/// more privileges, than the schema allows, or whose requester has more than
/// [`MAX_GROUPS`] groups, before it is judged: a direct POST skips the CRD
/// schema. Reads only `spec.privileges[*].resources` lengths of the object
/// and the length of `userInfo.groups`, without a tree. A body this cannot
/// read is refused (with why): the full parser must never see a body whose
/// bounds were not checked (a key given twice is read last-wins into a tree,
/// but refused here).
pub fn spec_within_limits(body: &[u8]) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Review {
        #[serde(default)]
        request: Option<Request>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Request {
        #[serde(default)]
        object: Option<Obj>,
        #[serde(default)]
        user_info: Option<UserInfo>,
    }
    #[derive(serde::Deserialize)]
    struct UserInfo {
        #[serde(default)]
        groups: Option<SeqLen>,
    }
    #[derive(serde::Deserialize)]
    struct Obj {
        #[serde(default)]
        spec: Option<Spec>,
    }
    #[derive(serde::Deserialize)]
    struct Spec {
        #[serde(default)]
        privileges: Option<Counted<Counted<IgnoredAny>>>,
    }
    // Only the new object is bounded: an old one is already stored.
    let review = serde_json::from_slice::<Review>(body)
        .map_err(|e| format!("the body is not an AdmissionReview: {e}"))?;
    let Some(request) = review.request else {
        return Ok(());
    };
    if let Some(SeqLen(n)) = request.user_info.and_then(|u| u.groups)
        && n > MAX_GROUPS
    {
        return Err(too_many_groups("userInfo.groups", n));
    }
    let Some(privileges) = request
        .object
        .and_then(|o| o.spec)
        .and_then(|s| s.privileges)
    else {
        return Ok(());
    };
    if privileges.len > MAX_PRIVILEGES {
        return Err(format!(
            "spec.privileges lists {} entries; at most {MAX_PRIVILEGES} are allowed",
            privileges.len
        ));
    }
    if let Some((i, n)) = privileges.max_inner
        && n > MAX_RESOURCES_PER_PRIVILEGE
    {
        return Err(format!(
            "spec.privileges[{i}].resources lists {n} entries; at most {MAX_RESOURCES_PER_PRIVILEGE} are allowed"
        ));
    }
    Ok(())
}

/// A list counted, not kept; for a list of privileges, the longest
/// `resources` list (its index and length).
struct Counted<T> {
    len: usize,
    max_inner: Option<(usize, usize)>,
    _t: std::marker::PhantomData<T>,
}

impl<'de> serde::Deserialize<'de> for Counted<IgnoredAny> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A privilege: a map whose `resources` list is counted.
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Counted<IgnoredAny>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a privilege")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut len = None;
                while let Some(key) = a.next_key::<MaybeString>()? {
                    if key.0.as_deref() == Some("resources") {
                        if len.is_some() {
                            return Err(de::Error::duplicate_field("resources"));
                        }
                        len = Some(a.next_value::<SeqLen>()?.0);
                    } else {
                        a.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Counted {
                    len: len.unwrap_or(0),
                    max_inner: None,
                    _t: std::marker::PhantomData,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Counted {
                    len: 0,
                    max_inner: None,
                    _t: std::marker::PhantomData,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> serde::Deserialize<'de> for Counted<Counted<IgnoredAny>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Counted<Counted<IgnoredAny>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of privileges")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut len = 0;
                let mut max_inner: Option<(usize, usize)> = None;
                while let Some(p) = a.next_element::<Counted<IgnoredAny>>()? {
                    if max_inner.is_none_or(|(_, n)| p.len > n) {
                        max_inner = Some((len, p.len));
                    }
                    len += 1;
                }
                Ok(Counted {
                    len,
                    max_inner,
                    _t: std::marker::PhantomData,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// The length of a list, its elements skipped.
struct SeqLen(usize);

impl<'de> serde::Deserialize<'de> for SeqLen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SeqLen;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<SeqLen, A::Error> {
                let mut n = 0;
                while a.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(SeqLen(n))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_values_linearly_and_stops_at_the_cap() {
        assert_eq!(json_values_within(b"", 10), Some(0));
        assert_eq!(json_values_within(b"[0,1,2]", 10), Some(4));
        assert_eq!(
            json_values_within(br#"{"a":"x,y:[{","b":[true,null,-1.5e3]}"#, 100),
            Some(8)
        );
        assert_eq!(json_values_within(br#""a\"b,c""#, 10), Some(1));
        assert_eq!(json_values_within(b"[0,0,0,0,0]", 3), None);
        let big = format!("[{}0]", "0,".repeat(2_000_000));
        assert_eq!(json_values_within(big.as_bytes(), MAX_JSON_VALUES), None);
    }

    #[test]
    fn probes_the_uid_without_the_rest() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","request":{"object":[1,2,{"x":[]}],"uid":"u-1","kind":7}}"#;
        assert_eq!(
            Probe::read(body),
            ("u-1".to_string(), "admission.k8s.io/v1".to_string())
        );
        assert_eq!(Probe::read(br#"{"request":"x"}"#), Default::default());
        assert_eq!(
            Probe::read(br#"{"request":{"uid":42}}"#),
            Default::default()
        );
        assert_eq!(Probe::read(b"[1,2]"), Default::default());
        assert_eq!(Probe::read(b"not json"), Default::default());
    }

    #[test]
    fn bounds_privileges_and_resources() {
        let body = |privileges: usize, resources: usize| {
            let r: Vec<_> = (0..resources)
                .map(|i| serde_json::json!({"name": format!("s{i}"), "level": "View"}))
                .collect();
            let p: Vec<_> = (0..privileges)
                .map(|_| serde_json::json!({"service": "Content", "domain": "Sources", "level": "Custom", "resources": r}))
                .collect();
            serde_json::to_vec(&serde_json::json!({"request": {"uid": "u", "object": {"spec": {"privileges": p}}}}))
                .unwrap()
        };
        assert_eq!(spec_within_limits(&body(2, 1000)), Ok(()));
        assert!(
            spec_within_limits(&body(1, 1001))
                .unwrap_err()
                .contains("resources lists 1001")
        );
        assert!(
            spec_within_limits(&body(201, 0))
                .unwrap_err()
                .contains("201 entries")
        );
        assert_eq!(spec_within_limits(b"{}"), Ok(()));
    }

    /// A body the pre-check cannot read is refused, never passed on to the
    /// parser that would judge it unbounded.
    #[test]
    fn a_body_the_pre_check_cannot_read_is_refused() {
        let huge: Vec<_> = (0..1001)
            .map(|i| serde_json::json!({"name": format!("s{i}"), "level": "View"}))
            .collect();
        let huge = serde_json::json!([{"service": "Content", "domain": "Sources", "level": "Custom", "resources": huge}]);
        let small = serde_json::json!([]);
        // (what, body, words of the refusal)
        let cases: Vec<(&str, String, &str)> = vec![
            ("not JSON", "nonsense".into(), "expected"),
            ("empty", String::new(), "EOF"),
            // serde_json's tree keeps the last of two keys: a small `spec`
            // first, the huge one second, was judged unbounded.
            (
                "spec given twice",
                format!(r#"{{"request":{{"uid":"u","object":{{"spec":{{"privileges":{small}}},"spec":{{"privileges":{huge}}}}}}}}}"#),
                "duplicate field `spec`",
            ),
            (
                "privileges given twice",
                format!(r#"{{"request":{{"object":{{"spec":{{"privileges":{small},"privileges":{huge}}}}}}}}}"#),
                "duplicate field `privileges`",
            ),
            (
                "object given twice",
                format!(r#"{{"request":{{"object":{{}},"object":{{"spec":{{"privileges":{huge}}}}}}}}}"#),
                "duplicate field `object`",
            ),
            (
                "request given twice",
                r#"{"request":{},"request":{}}"#.into(),
                "duplicate field `request`",
            ),
            (
                "resources given twice",
                r#"{"request":{"object":{"spec":{"privileges":[{"resources":[],"resources":[]}]}}}}"#.into(),
                "duplicate field `resources`",
            ),
            (
                "groups given twice",
                r#"{"request":{"userInfo":{"groups":[],"groups":[]}}}"#.into(),
                "duplicate field `groups`",
            ),
            (
                "privileges of the wrong type",
                r#"{"request":{"object":{"spec":{"privileges":"all"}}}}"#.into(),
                "invalid type",
            ),
            (
                "groups of the wrong type",
                r#"{"request":{"userInfo":{"groups":"system:masters"}}}"#.into(),
                "invalid type",
            ),
        ];
        for (what, body, words) in cases {
            let why = spec_within_limits(body.as_bytes()).expect_err(&format!("{what}: passed on"));
            assert!(
                why.starts_with("the body is not an AdmissionReview: "),
                "{what}: {why}"
            );
            assert!(why.contains(words), "{what}: {why}");
        }
        // The same bodies, each key once, are read (and the huge one refused).
        let once = format!(r#"{{"request":{{"object":{{"spec":{{"privileges":{huge}}}}}}}}}"#);
        assert!(
            spec_within_limits(once.as_bytes())
                .unwrap_err()
                .contains("resources lists 1001")
        );
        assert_eq!(
            spec_within_limits(br#"{"request":{"userInfo":{"groups":null},"object":null}}"#),
            Ok(())
        );
    }

    #[test]
    fn bounds_the_requester_s_groups() {
        let body = |n: usize| {
            let groups: Vec<String> = (0..n).map(|i| format!("g{i}")).collect();
            serde_json::to_vec(&serde_json::json!({"request": {"uid": "u", "userInfo": {"username": "u", "groups": groups}}}))
                .unwrap()
        };
        assert_eq!(spec_within_limits(&body(MAX_GROUPS)), Ok(()));
        let why = spec_within_limits(&body(MAX_GROUPS + 1)).unwrap_err();
        assert!(
            why.contains(&format!("userInfo.groups lists {} groups", MAX_GROUPS + 1)),
            "{why}"
        );
    }
}
