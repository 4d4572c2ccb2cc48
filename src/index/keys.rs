//! One namespace's API key digests ([`NamespaceKeys`]), from the ApiKeys'
//! status (the values stay in Secrets), and the table the decision service
//! verifies presented values against. Kept beside the snapshots: a status
//! write changes no definition, so it must not invalidate what the rules
//! derived.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;

use crate::core::decision::{KeyDigests, KeyTable};

/// One namespace's key digests by key name, and the table built from them;
/// and each key's `status.lastUsedAt` (for the decision service's usage
/// flusher), which never rebuilds the table.
#[derive(Default)]
pub(super) struct NamespaceKeys {
    pub(super) digests: HashMap<String, KeyDigests>,
    pub(super) table: Arc<KeyTable>,
    pub(super) last_used: HashMap<String, Timestamp>,
}

impl NamespaceKeys {
    /// Sets (or, with `None`, removes) one key's digests; rebuilds the table
    /// only when they changed.
    pub(super) fn set(&mut self, name: &str, digests: Option<KeyDigests>) {
        let changed = match digests {
            Some(d) if self.digests.get(name) != Some(&d) => {
                self.digests.insert(name.to_string(), d);
                true
            }
            Some(_) => false,
            None => self.digests.remove(name).is_some(),
        };
        if changed {
            self.rebuild();
        }
    }

    /// Sets (or removes) one key's last use as its status reports it.
    pub(super) fn set_last_used(&mut self, name: &str, at: Option<Timestamp>) {
        match at {
            Some(t) if self.last_used.get(name) != Some(&t) => {
                self.last_used.insert(name.to_string(), t);
            }
            Some(_) => {}
            None => {
                self.last_used.remove(name);
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.digests.is_empty() && self.last_used.is_empty()
    }

    pub(super) fn rebuild(&mut self) {
        self.table = Arc::new(KeyTable::new(
            self.digests.iter().map(|(n, d)| (n.as_str(), d)),
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kube::runtime::watcher;

    use crate::api::ApiKey;
    use crate::index::Index;

    fn api_key(ns: &str, name: &str, hash: Option<[u8; 32]>) -> ApiKey {
        let mut k: ApiKey = serde_json::from_value(serde_json::json!({
            "apiVersion": "orgaccess.dev/v1alpha1",
            "kind": "ApiKey",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"displayName": name, "template": "AnonymousSearch"}
        }))
        .unwrap();
        k.status = Some(crate::api::ApiKeyStatus {
            hash: hash.map(hex::encode),
            ..Default::default()
        });
        k
    }

    /// The key table follows status writes, deletions and relists, which
    /// change no definition (so nothing else is invalidated).
    #[test]
    fn key_digests_follow_status_writes_deletes_and_relists() {
        use sha2::Digest;
        let index = Index::new();
        let value: [u8; 32] = sha2::Sha256::digest(b"value").into();
        let other = [2u8; 32];
        let verifies = |ns: &str| {
            let snap = index.namespace(ns);
            crate::core::decision::verify_key(
                &snap.state,
                &snap.grantees(),
                &index.key_table(ns),
                b"value",
                "127.0.0.1".parse().unwrap(),
                jiff::Timestamp::now(),
            )
            .is_ok()
        };

        index.apply(&api_key("a", "k", None));
        assert!(!verifies("a"));
        index.apply(&api_key("a", "k", Some(value)));
        assert!(verifies("a"), "a status write adds the digest");
        assert!(!verifies("b"), "only in its namespace");
        index.apply(&api_key("a", "k", Some(other)));
        assert!(!verifies("a"), "a rotation replaces it");
        index.apply(&api_key("a", "k", Some(value)));
        index.delete(&api_key("a", "k", Some(value)));
        assert!(index.key_table("a").is_empty(), "a deletion forgets it");

        index.apply(&api_key("a", "k", Some(value)));
        index.apply_event::<ApiKey>(&watcher::Event::Init);
        index.apply_event(&watcher::Event::InitApply(api_key("a", "x", Some(other))));
        index.apply_event::<ApiKey>(&watcher::Event::InitDone);
        assert!(!verifies("a"), "a relist without the key forgets it");
        assert_eq!(
            index.key_table("a").len(),
            1,
            "only the listed key's digest"
        );
    }

    /// A usage write (`status.lastUsedAt`, the decision service's) is
    /// recorded for the flusher and changes nothing else: no route, no new
    /// snapshot, no new key table.
    #[test]
    fn a_usage_write_routes_nothing_and_keeps_the_table_and_snapshot() {
        let index = Index::new();
        let mut k = api_key("a", "k", Some([7u8; 32]));
        k.status.as_mut().unwrap().observed_generation = Some(1);
        k.metadata.generation = Some(1);
        index.apply(&k);
        assert!(index.has_api_key("a", "k") && !index.has_api_key("a", "x"));
        assert_eq!(index.last_used("a", "k"), None);
        let table = index.key_table("a");
        let snapshot = index.namespace("a");
        let grantees = snapshot.grantees();
        drop(snapshot);

        k.status.as_mut().unwrap().last_used_at = Some("2026-11-30T19:05:00Z".into());
        let affected = index.apply(&k);
        assert!(affected.is_empty(), "{affected:?}");
        assert!(Arc::ptr_eq(&table, &index.key_table("a")), "table rebuilt");
        assert!(
            Arc::ptr_eq(&grantees, &index.namespace("a").grantees()),
            "derived facts dropped"
        );
        assert_eq!(
            index.last_used("a", "k"),
            Some("2026-11-30T19:05:00Z".parse().unwrap())
        );
        index.delete(&k);
        assert_eq!(index.last_used("a", "k"), None, "forgotten with the key");
    }
}
