//! The requester cache of a namespace snapshot: each Kubernetes identity's
//! mapped members and merged privileges ([`crate::core::effective::requester_view`]),
//! keyed by a digest of the identity's relevant part and bounded in entries
//! and bytes ([`Namespace::requester`](super::Namespace::requester)).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::core::effective::RequesterView;

/// Requester views kept per namespace, at most.
const REQUESTER_CACHE: usize = 4096;
/// Bytes of requester views kept per namespace, at most (an estimate, see
/// [`view_bytes`]). Keys are the relevant part of an identity, so a
/// namespace holds at most one view per user its Members name (plus one for
/// everyone else) per combination of named groups: this bound is reached
/// only by an organization with that many distinct requesters.
const REQUESTER_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// The key of a requester view: a digest of the relevant part of an identity
/// (`None`: a user name no Member names).
pub(super) fn requester_key(user: Option<&str>, groups: &[&str]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    // Length-prefixed, so no two identities write the same bytes.
    match user {
        Some(u) => {
            h.update([1]);
            h.update((u.len() as u64).to_le_bytes());
            h.update(u.as_bytes());
        }
        None => h.update([0]),
    }
    for g in groups {
        h.update((g.len() as u64).to_le_bytes());
        h.update(g.as_bytes());
    }
    h.finalize().into()
}

/// An estimate of what one cached view costs: its key and slot, its member
/// names and its privileges.
fn view_bytes(v: &RequesterView) -> usize {
    use crate::core::privilege::Grant;
    use std::mem::size_of;
    let slot = size_of::<([u8; 32], (Arc<RequesterView>, usize))>() + 16;
    let members: usize = v
        .members
        .iter()
        .map(|m| size_of::<String>() + m.len())
        .sum();
    let privileges: usize = v
        .privileges
        .iter()
        .map(|(_, g)| size_of::<(crate::core::catalog::DomainId, Grant)>() + 16 * g.resources.len())
        .sum();
    slot + size_of::<RequesterView>() + members + privileges
}

/// What every namespace's requester cache holds, together (for the
/// `orgaccess_requester_cache_*` gauges).
static REQUESTER_USAGE: (AtomicUsize, AtomicUsize) = (AtomicUsize::new(0), AtomicUsize::new(0));

/// Requester views cached by every live snapshot of the process: entries and
/// estimated bytes.
pub fn requester_cache_usage() -> (usize, usize) {
    (
        REQUESTER_USAGE.0.load(Ordering::Relaxed),
        REQUESTER_USAGE.1.load(Ordering::Relaxed),
    )
}

/// Requester views by the digest of the identity's relevant part, bounded in
/// entries and bytes.
#[derive(Debug, Default)]
pub(super) struct RequesterCache {
    pub(super) views: HashMap<[u8; 32], (Arc<RequesterView>, usize)>,
    pub(super) bytes: usize,
}

impl RequesterCache {
    /// Drops a view (one past its steady span, about to be replaced).
    pub(super) fn remove(&mut self, key: &[u8; 32]) {
        if let Some((_, n)) = self.views.remove(key) {
            self.bytes -= n;
            REQUESTER_USAGE.0.fetch_sub(1, Ordering::Relaxed);
            REQUESTER_USAGE.1.fetch_sub(n, Ordering::Relaxed);
        }
    }

    pub(super) fn insert(&mut self, key: [u8; 32], view: Arc<RequesterView>) {
        let size = view_bytes(&view);
        if size > REQUESTER_CACHE_BYTES || self.views.contains_key(&key) {
            return;
        }
        // Room is made by dropping arbitrary entries: a namespace with more
        // requesters than fit keeps most of them rather than starting over.
        while !self.views.is_empty()
            && (self.views.len() >= REQUESTER_CACHE || self.bytes + size > REQUESTER_CACHE_BYTES)
        {
            let Some(k) = self.views.keys().next().copied() else {
                break;
            };
            if let Some((_, n)) = self.views.remove(&k) {
                self.bytes -= n;
                REQUESTER_USAGE.0.fetch_sub(1, Ordering::Relaxed);
                REQUESTER_USAGE.1.fetch_sub(n, Ordering::Relaxed);
            }
        }
        self.views.insert(key, (view, size));
        self.bytes += size;
        REQUESTER_USAGE.0.fetch_add(1, Ordering::Relaxed);
        REQUESTER_USAGE.1.fetch_add(size, Ordering::Relaxed);
    }
}

impl Drop for RequesterCache {
    fn drop(&mut self) {
        REQUESTER_USAGE
            .0
            .fetch_sub(self.views.len(), Ordering::Relaxed);
        REQUESTER_USAGE.1.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::OrgState;
    use crate::index::Namespace;

    /// A flood of identities no Member names (each a new user name, each
    /// with a thousand groups) shares one cached view; the identities
    /// Members name get theirs; the cache stays within its bounds.
    #[test]
    fn requester_views_are_kept_by_the_identity_s_relevant_part() {
        use crate::core::model::{MemberDef, Subject, SubjectKind};
        let mut state = OrgState::default();
        for (name, kind, subject) in [
            ("ann", SubjectKind::User, "ann@example.com"),
            ("ops", SubjectKind::Group, "oidc:ops"),
        ] {
            state.members.insert(
                name.into(),
                Arc::new(MemberDef {
                    name: name.into(),
                    subjects: vec![Subject {
                        kind,
                        name: subject.into(),
                        namespace: None,
                    }],
                    accepted: true,
                    ..MemberDef::default()
                }),
            );
        }
        let ns = Namespace::new(state);
        let now = jiff::Timestamp::UNIX_EPOCH;
        let junk: Vec<String> = (0..1000).map(|i| format!("forged-{i}")).collect();
        for i in 0..2000 {
            let view = ns.requester(&format!("mallory-{i}-{}", "x".repeat(1000)), &junk, now);
            assert!(view.members.is_empty());
        }
        assert_eq!(ns.requester_cache().0, 1, "one view for everyone unnamed");
        let mut with_ops = junk.clone();
        with_ops.push("oidc:ops".into());
        assert_eq!(ns.requester("mallory", &with_ops, now).members, ["ops"]);
        assert_eq!(ns.requester("ann@example.com", &junk, now).members, ["ann"]);
        assert_eq!(
            ns.requester("ann@example.com", &with_ops, now).members,
            ["ann", "ops"]
        );
        let (entries, bytes) = ns.requester_cache();
        assert_eq!(entries, 4);
        assert!(bytes < 4 * 1024, "{bytes} bytes");
        let (all_entries, _) = requester_cache_usage();
        assert!(all_entries >= 4);
    }

    #[test]
    fn the_requester_cache_is_bounded_in_entries_and_bytes() {
        let mut cache = RequesterCache::default();
        for i in 0..(REQUESTER_CACHE as u32 + 100) {
            let key = requester_key(Some(&i.to_string()), &[]);
            cache.insert(key, Arc::new(RequesterView::default()));
            assert!(cache.views.len() <= REQUESTER_CACHE);
        }
        assert_eq!(cache.views.len(), REQUESTER_CACHE);
        let big = RequesterView {
            members: vec!["m".repeat(REQUESTER_CACHE_BYTES / 2)],
            ..RequesterView::default()
        };
        cache.insert([7; 32], Arc::new(big.clone()));
        cache.insert([8; 32], Arc::new(big.clone()));
        assert!(cache.bytes <= REQUESTER_CACHE_BYTES, "{}", cache.bytes);
        assert!(cache.views.contains_key(&[8; 32]));
        let huge = RequesterView {
            members: vec!["m".repeat(REQUESTER_CACHE_BYTES)],
            ..RequesterView::default()
        };
        cache.insert([9; 32], Arc::new(huge));
        assert!(!cache.views.contains_key(&[9; 32]), "too big to keep");
        assert_eq!(
            cache.bytes,
            cache.views.values().map(|(_, n)| n).sum::<usize>()
        );
    }
}
