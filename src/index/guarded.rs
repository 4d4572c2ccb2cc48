//! An object as a watch reads it: the typed object, or, when it does not
//! deserialize, its metadata and why ([`Guarded`]), so one bad object is
//! skipped instead of breaking its kind's watch.
//!
//! kube's `DeserializeGuard` does the same by reading the object into a
//! generic tree, copying the tree, and reading the type from the copy: three
//! passes with an allocation per string, on every watch event (a tenth of
//! the webhook process's CPU in the side-by-side benchmark,
//! docs/performance.md). This guard keeps the object's text as it came
//! (one pass, one allocation) and reads the type from it, once; the
//! metadata alone is read only for an object that failed.
//!
//! The text is taken the way serde_json's `RawValue` takes it; the watch
//! reads each line and each list with serde_json. Where no text is offered
//! (an event whose `object` precedes its `type` is buffered by serde before
//! the object is read), the guard reads a tree and the type from it: two
//! passes, still one fewer than kube's.

use std::borrow::Cow;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::PartialObjectMeta;
use kube::core::error_boundary::InvalidObject;
use serde::de::{DeserializeOwned, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// `K`, or the metadata of an object of kind `K` that did not deserialize.
#[derive(Clone, Debug)]
pub struct Guarded<K>(pub Result<K, InvalidObject>);

impl<'de, K: DeserializeOwned + Resource> Deserialize<'de> for Guarded<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(RAW, Text(PhantomData))
    }
}

/// The name under which serde_json hands a value's text to a visitor (its
/// `RawValue` protocol: `deserialize_newtype_struct` with this name is
/// answered with a one-entry map, this name to the text). Any other
/// deserializer, or a serde_json without it, calls `visit_newtype_struct`.
const RAW: &str = "$serde_json::private::RawValue";

/// Reads an object's text when the deserializer offers it, and a tree of
/// it otherwise (an event whose `object` came before its `type`, which
/// serde buffers).
struct Text<K>(PhantomData<K>);

impl<'de, K: DeserializeOwned + Resource> Visitor<'de> for Text<K> {
    type Value = Guarded<K>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match map.next_key::<Str<'de>>()? {
            Some(Str(key)) if key == RAW => {}
            _ => return Err(A::Error::custom("expected an object's text")),
        }
        #[cfg(test)]
        tests::TEXTS_READ.with(|n| n.set(n.get() + 1));
        let Str(text) = map.next_value()?;
        Ok(Guarded(match serde_json::from_str::<K>(&text) {
            Ok(object) => Ok(object),
            Err(error) => Err(invalid::<K, A::Error>(
                error,
                serde_json::from_str::<PartialObjectMeta<K>>(&text),
            )?),
        }))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let tree = serde_json::Value::deserialize(d)?;
        Ok(Guarded(match K::deserialize(&tree) {
            Ok(object) => Ok(object),
            Err(error) => Err(invalid::<K, D::Error>(
                error,
                PartialObjectMeta::<K>::deserialize(&tree),
            )?),
        }))
    }
}

/// A string, borrowed from the input when it can be (an event's line).
struct Str<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An object that did not read as `K`: its metadata and why, or an error
/// when not even its metadata reads (not an object at all).
fn invalid<K: Resource, E: serde::de::Error>(
    error: serde_json::Error,
    meta: Result<PartialObjectMeta<K>, serde_json::Error>,
) -> Result<InvalidObject, E> {
    let PartialObjectMeta { metadata, .. } = meta.map_err(E::custom)?;
    Ok(InvalidObject {
        error: error.to_string(),
        metadata,
    })
}

impl<K: Resource> Resource for Guarded<K> {
    kind_of_k!();

    fn meta(&self) -> &ObjectMeta {
        self.0.as_ref().map_or_else(|e| &e.metadata, K::meta)
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0
            .as_mut()
            .map_or_else(|e| &mut e.metadata, K::meta_mut)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use kube::api::ObjectList;
    use kube::core::WatchEvent;

    use super::Guarded;
    use crate::api::Group;

    thread_local! {
        /// Objects this thread read from their text (the one-pass path).
        pub(super) static TEXTS_READ: Cell<usize> = const { Cell::new(0) };
    }

    const GOOD: &str = r#"{"apiVersion":"orgaccess.dev/v1alpha1","kind":"Group",
        "metadata":{"name":"ops","namespace":"acme","resourceVersion":"7",
          "managedFields":[{"manager":"kubectl","operation":"Apply","fieldsType":"FieldsV1",
            "fieldsV1":{"f:spec":{"f:privileges":{}}}}]},
        "spec":{"privileges":[]}}"#;
    const BAD: &str = r#"{"apiVersion":"orgaccess.dev/v1alpha1","kind":"Group",
        "metadata":{"name":"broken","namespace":"acme"},
        "spec":{"privileges":"not a list"}}"#;

    /// What each kind of line or body the watch reads gives, for a valid
    /// object and an invalid one; the table beside the rule.
    #[test]
    fn cases() {
        // As the apiserver writes an event (`type` first: its text is read
        // once), and with `object` first (buffered by serde: read as a tree).
        let texts = || TEXTS_READ.with(Cell::get);
        let before = texts();
        events_read(|object| format!(r#"{{"type":"ADDED","object":{object}}}"#));
        assert_eq!(texts() - before, 3, "read from their text, in one pass");
        let before = texts();
        events_read(|object| format!(r#"{{"object":{object},"type":"ADDED"}}"#));
        assert_eq!(texts() - before, 0, "buffered by serde: read as a tree");
        let list = format!(
            r#"{{"apiVersion":"orgaccess.dev/v1alpha1","kind":"GroupList","metadata":{{"resourceVersion":"9"}},"items":[{GOOD},{BAD}]}}"#
        );
        let items = serde_json::from_str::<ObjectList<Guarded<Group>>>(&list)
            .unwrap()
            .items;
        let read: Vec<(Option<&str>, bool)> = items
            .iter()
            .map(|g| (kube::Resource::meta(g).name.as_deref(), g.0.is_ok()))
            .collect();
        assert_eq!(read, [(Some("ops"), true), (Some("broken"), false)]);
        // Read from a byte slice, as a list's body is, and from a reader.
        let before = texts();
        let from_bytes = serde_json::from_slice::<ObjectList<Guarded<Group>>>(list.as_bytes());
        assert_eq!(from_bytes.unwrap().items.len(), 2);
        let from_reader = serde_json::from_reader::<_, ObjectList<Guarded<Group>>>(list.as_bytes());
        assert_eq!(from_reader.unwrap().items.len(), 2);
        assert_eq!(texts() - before, 4);
    }

    fn events_read(event: fn(&str) -> String) {
        let WatchEvent::Added(Guarded(Ok(good))) =
            serde_json::from_str::<WatchEvent<Guarded<Group>>>(&event(GOOD)).unwrap()
        else {
            panic!("a valid object is read as its type")
        };
        assert_eq!(good.metadata.name.as_deref(), Some("ops"));
        assert_eq!(good.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(good.metadata.managed_fields.as_ref().map(Vec::len), Some(1));

        let WatchEvent::Added(Guarded(Err(bad))) =
            serde_json::from_str::<WatchEvent<Guarded<Group>>>(&event(BAD)).unwrap()
        else {
            panic!("an invalid object is kept as its metadata")
        };
        assert_eq!(bad.metadata.name.as_deref(), Some("broken"));
        assert_eq!(bad.metadata.namespace.as_deref(), Some("acme"));
        assert!(bad.error.contains("invalid type"), "{}", bad.error);

        // Not an object at all: no metadata to keep, so the event fails,
        // as kube's guard fails it.
        assert!(serde_json::from_str::<WatchEvent<Guarded<Group>>>(&event("[1]")).is_err());
    }

    /// The guard reads exactly what reading the type directly reads.
    #[test]
    fn a_valid_object_reads_as_its_type() {
        let direct: Group = serde_json::from_str(GOOD).unwrap();
        let Guarded(Ok(guarded)) = serde_json::from_str::<Guarded<Group>>(GOOD).unwrap() else {
            panic!("valid")
        };
        assert_eq!(
            serde_json::to_value(&direct).unwrap(),
            serde_json::to_value(&guarded).unwrap()
        );
    }
}
