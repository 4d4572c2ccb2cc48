//! The dense form of a privilege set, and the algebra over it.
//!
//! The catalog is static and has at most 64 domains, so a set keeps its
//! domain-wide part as six 64-bit words, one bit per domain: two for the
//! level (View, Edit), three for the abilities (Allowed, Push, Create), one
//! for "has per-resource levels". Merging two sets is an OR of those words,
//! and "does this set cover that one" is an AND-NOT of them that must come
//! out zero: no allocation, no search, whatever the number of domains.
//!
//! Per-resource levels live in one vector sorted by domain, then resource
//! id, each entry packed in a `u64` (domain, interned id, level): a merge is
//! one merge join over two such vectors, a covers check one walk.
//!
//! The set is kept normalized as before, so equal access has one
//! representation: Edit carries Can Create where the domain ties creation to
//! Edit, and a per-resource level is kept only above its domain's level.

use std::fmt;
use std::sync::LazyLock;

use super::{Abilities, Grant, Level, ResourceId};
use crate::catalog::{self, CATALOG, Create, DomainId};

/// Domains as bits: bit `d` stands for [`DomainId`] `d`.
type Domains = u64;

fn bit(d: DomainId) -> Domains {
    debug_assert!((d as usize) < Domains::BITS as usize);
    1 << d
}

/// The domains where Edit carries Can Create.
static CREATES_WITH_EDIT: LazyLock<Domains> = LazyLock::new(|| {
    assert!(
        CATALOG.len() <= Domains::BITS as usize,
        "a privilege set keeps one bit per catalog domain"
    );
    (0..CATALOG.len() as DomainId)
        .filter(|&d| catalog::domain(d).offers.create != Create::No)
        .fold(0, |m, d| m | bit(d))
});

/// One per-resource level: domain (bits 40..56), resource id (8..40), level
/// (0..8). Ordered by domain, then resource, then level.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry(u64);

impl Entry {
    fn new(domain: DomainId, id: ResourceId, level: Level) -> Entry {
        Entry(((domain as u64) << 40) | ((id.0 as u64) << 8) | level as u64)
    }
    /// Domain and resource, without the level.
    fn key(self) -> u64 {
        self.0 >> 8
    }
    fn domain(self) -> DomainId {
        (self.0 >> 40) as DomainId
    }
    fn id(self) -> ResourceId {
        ResourceId((self.0 >> 8) as u32)
    }
    fn level(self) -> Level {
        match self.0 as u8 {
            2 => Level::Edit,
            1 => Level::View,
            _ => Level::None,
        }
    }
    fn is_edit(self) -> bool {
        self.0 as u8 == Level::Edit as u8
    }
}

/// The first entry of domain `d` or above, as a bound on [`Entry`]'s value.
fn domain_start(d: DomainId) -> u64 {
    (d as u64) << 40
}

/// The iterator over a grant's per-resource levels.
pub type ResourceIter<'a> =
    std::iter::Map<std::slice::Iter<'a, Entry>, fn(&Entry) -> (ResourceId, Level)>;

/// The per-resource levels of one grant of a set, sorted by resource id.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Resources<'a>(&'a [Entry]);

impl<'a> Resources<'a> {
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> ResourceIter<'a> {
        self.0.iter().map(|e| (e.id(), e.level()))
    }
    /// The level listed for one resource, None when it is not listed.
    pub fn level_of(&self, id: ResourceId) -> Level {
        match self.0.binary_search_by_key(&id, |e| e.id()) {
            Ok(i) => self.0[i].level(),
            Err(_) => Level::None,
        }
    }
}

impl<'a> IntoIterator for &Resources<'a> {
    type Item = (ResourceId, Level);
    type IntoIter = ResourceIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for Resources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// What a set holds on one domain, borrowed from the set. [`Grant`] is the
/// owned form (`Grant::from`), used to build sets. Cheap to clone (a few
/// words and a slice).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GrantRef<'a> {
    /// Domain-wide level (View all / Edit all on resource domains).
    pub level: Level,
    pub abilities: Abilities,
    /// Custom: per-resource levels, sorted by id, each above `level`.
    pub resources: Resources<'a>,
}

impl GrantRef<'_> {
    pub fn is_empty(&self) -> bool {
        self.level == Level::None && self.abilities.is_empty() && self.resources.is_empty()
    }

    /// The level this grant gives on one resource of its domain.
    pub fn level_on(&self, resource: &str) -> Level {
        match ResourceId::lookup(resource) {
            Some(id) => self.level_on_id(id),
            None => self.level,
        }
    }

    pub fn level_on_id(&self, resource: ResourceId) -> Level {
        self.level.max(self.resources.level_of(resource))
    }
}

impl From<GrantRef<'_>> for Grant {
    fn from(g: GrantRef<'_>) -> Grant {
        Grant {
            level: g.level,
            abilities: g.abilities,
            resources: g.resources.iter().collect(),
        }
    }
}

impl From<&Grant> for Grant {
    fn from(g: &Grant) -> Grant {
        g.clone()
    }
}

/// A normalized set of privileges: at most one grant per domain.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct PrivilegeSet {
    /// Level at least View.
    view: Domains,
    /// Level Edit (a subset of `view`).
    edit: Domains,
    allowed: Domains,
    push: Domains,
    create: Domains,
    /// Domains with per-resource levels in `resources`.
    custom: Domains,
    /// Per-resource levels, sorted by domain then resource, each above its
    /// domain's level.
    resources: Vec<Entry>,
}

impl PrivilegeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// The domains with a grant.
    fn present(&self) -> Domains {
        self.view | self.allowed | self.push | self.create | self.custom
    }

    pub fn is_empty(&self) -> bool {
        self.present() == 0
    }

    /// Number of domains with a grant.
    pub fn len(&self) -> usize {
        self.present().count_ones() as usize
    }

    fn level(&self, m: Domains) -> Level {
        if self.edit & m != 0 {
            Level::Edit
        } else if self.view & m != 0 {
            Level::View
        } else {
            Level::None
        }
    }

    fn grant_ref<'a>(&self, d: DomainId, run: &'a [Entry]) -> GrantRef<'a> {
        let m = bit(d);
        let mut abilities = Abilities::NONE;
        for (plane, a) in [
            (self.allowed, Abilities::ALLOWED),
            (self.push, Abilities::PUSH),
            (self.create, Abilities::CREATE),
        ] {
            if plane & m != 0 {
                abilities = abilities.union(a);
            }
        }
        GrantRef {
            level: self.level(m),
            abilities,
            resources: Resources(run),
        }
    }

    /// The index range of domain `d`'s entries in `resources`.
    fn run(&self, d: DomainId) -> std::ops::Range<usize> {
        let start = self.resources.partition_point(|e| e.0 < domain_start(d));
        if self.custom & bit(d) == 0 {
            return start..start;
        }
        let len = self.resources[start..].partition_point(|e| e.domain() == d);
        start..start + len
    }

    /// The grants, in domain order.
    pub fn iter(&self) -> impl Iterator<Item = (DomainId, GrantRef<'_>)> {
        let mut left = self.present();
        let mut pos = 0;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let d = left.trailing_zeros() as DomainId;
            left &= left - 1;
            let start = pos;
            while self.resources.get(pos).is_some_and(|e| e.domain() == d) {
                pos += 1;
            }
            Some((d, self.grant_ref(d, &self.resources[start..pos])))
        })
    }

    pub fn get(&self, domain: DomainId) -> Option<GrantRef<'_>> {
        if self.present() & bit(domain) == 0 {
            return None;
        }
        Some(self.grant_ref(domain, &self.resources[self.run(domain)]))
    }

    /// Replaces the grant on a domain (an empty grant removes it).
    pub fn set(&mut self, domain: DomainId, grant: impl Into<Grant>) {
        let mut grant: Grant = grant.into();
        grant.normalize(domain);
        grant.resources.sort_unstable();
        // A resource listed twice keeps its highest level (the last after sorting).
        grant.resources.dedup_by(|later, earlier| {
            later.0 == earlier.0 && {
                earlier.1 = later.1;
                true
            }
        });
        let run = self.run(domain);
        let m = bit(domain);
        let put = |plane: &mut Domains, on: bool| *plane = (*plane & !m) | if on { m } else { 0 };
        put(&mut self.view, grant.level >= Level::View);
        put(&mut self.edit, grant.level == Level::Edit);
        put(
            &mut self.allowed,
            grant.abilities.contains(Abilities::ALLOWED),
        );
        put(&mut self.push, grant.abilities.contains(Abilities::PUSH));
        put(
            &mut self.create,
            grant.abilities.contains(Abilities::CREATE),
        );
        put(&mut self.custom, !grant.resources.is_empty());
        let entries = grant
            .resources
            .iter()
            .map(|&(id, level)| Entry::new(domain, id, level));
        self.resources.splice(run, entries);
    }

    /// Adds a grant on top of what the set holds on that domain.
    pub fn add(&mut self, domain: DomainId, grant: &Grant) {
        let mut one = PrivilegeSet::new();
        one.set(domain, grant);
        self.merge_in(&one);
    }

    /// Adds one per-resource level (used for access-list grants).
    pub fn add_resource(&mut self, domain: DomainId, resource: &str, level: Level) {
        let grant = Grant {
            resources: vec![(ResourceId::of(resource), level)],
            ..Grant::default()
        };
        self.add(domain, &grant);
    }

    /// The conflict rules: per domain the highest level, abilities if any set
    /// grants them, per-resource levels resource by resource.
    pub fn merge(&self, other: &PrivilegeSet) -> PrivilegeSet {
        let mut out = PrivilegeSet {
            resources: Vec::with_capacity(self.resources.len() + other.resources.len()),
            ..PrivilegeSet::new()
        };
        out.merge_in(self);
        out.merge_in(other);
        out
    }

    /// The merge of all `sets` (empty for none), with one allocation: the
    /// accumulator is sized for every set's per-resource levels up front, so
    /// no merge into it grows it. Used by the effective-privilege recompute.
    pub fn union<'a, I>(sets: I) -> PrivilegeSet
    where
        I: IntoIterator<Item = &'a PrivilegeSet>,
        I::IntoIter: Clone,
    {
        let sets = sets.into_iter();
        let mut out = PrivilegeSet {
            resources: Vec::with_capacity(sets.clone().map(|s| s.resources.len()).sum()),
            ..PrivilegeSet::new()
        };
        for s in sets {
            out.merge_in(s);
        }
        out
    }

    /// Makes room for merging `other` in without growing.
    pub fn reserve_for(&mut self, other: &PrivilegeSet) {
        self.resources.reserve(other.resources.len());
    }

    /// In-place [`merge`](Self::merge), the hot path of effective-privilege
    /// recomputation: an OR of the domain words, then one merge join of the
    /// per-resource levels (none when `self` already holds `other`'s, or
    /// when the merged level is Edit on every domain where `other` has some).
    /// Reserves room for `other`'s levels once; no allocation when `self`
    /// already has it.
    pub fn merge_in(&mut self, other: &PrivilegeSet) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            // Not `clone_from` (the derived one drops `self`'s buffer): keep
            // the accumulator's capacity.
            let resources = std::mem::take(&mut self.resources);
            *self = PrivilegeSet {
                resources,
                ..*other
            };
            self.resources.extend_from_slice(&other.resources);
            return;
        }
        let both = self.present() & other.present();
        let view = self.view | other.view;
        let edit = self.edit | other.edit;
        // Where a side's level rose, its per-resource levels at or below the
        // new level go.
        let raised = (self.custom & ((view & !self.view) | (edit & !self.edit)))
            | (other.custom & ((view & !other.view) | (edit & !other.edit)));
        self.view = view;
        self.edit = edit;
        self.allowed |= other.allowed;
        self.push |= other.push;
        self.create |= other.create | (edit & both & *CREATES_WITH_EDIT);
        // `other`'s levels matter only below Edit all; they add nothing when
        // `self` lists them all already (checked only when `self` has
        // levels on each of those domains).
        let theirs = other.custom & !edit;
        let held = theirs == 0
            || (other.custom & !self.custom == 0 && holds(&self.resources, &other.resources));
        if held && raised == 0 {
            return;
        }
        let (from, theirs) = if held {
            (&[][..], 0)
        } else {
            (&other.resources[..], other.custom)
        };
        let levels = Levels { edit, raised };
        self.custom = merge_runs(&mut self.resources, self.custom, from, theirs, levels);
    }

    /// `self` covers `other` when, on every domain and resource, it holds at
    /// least what `other` holds.
    pub fn covers(&self, other: &PrivilegeSet) -> bool {
        let short = (other.view & !self.view)
            | (other.edit & !self.edit)
            | (other.allowed & !self.allowed)
            | (other.push & !self.push)
            | (other.create & !self.create);
        if short != 0 {
            return false;
        }
        // Per-resource levels matter only where `self` lacks Edit all.
        if other.custom & !self.edit == 0 {
            return true;
        }
        let mut have = self.resources.iter().peekable();
        other.resources.iter().all(|want| {
            let m = bit(want.domain());
            if self.edit & m != 0 || (self.view & m != 0 && !want.is_edit()) {
                return true;
            }
            while have.next_if(|h| h.key() < want.key()).is_some() {}
            have.peek()
                .is_some_and(|h| h.key() == want.key() && h.0 >= want.0)
        })
    }

    /// Covers, and is not covered back.
    pub fn strictly_covers(&self, other: &PrivilegeSet) -> bool {
        self.covers(other) && !other.covers(self)
    }

    /// Exactly the privileges of `wanted` that `self` lacks; empty iff `self`
    /// covers `wanted`. Allocates only when something per-resource is missing.
    pub fn missing(&self, wanted: &PrivilegeSet) -> PrivilegeSet {
        let short = (wanted.view & !self.view) | (wanted.edit & !self.edit);
        let mut out = PrivilegeSet {
            view: wanted.view & short,
            edit: wanted.edit & short,
            allowed: wanted.allowed & !self.allowed,
            push: wanted.push & !self.push,
            create: wanted.create & !self.create,
            custom: 0,
            resources: Vec::new(),
        };
        if wanted.custom & !self.edit == 0 {
            return out;
        }
        let mut have = self.resources.iter().peekable();
        for &want in &wanted.resources {
            let m = bit(want.domain());
            if self.edit & m != 0 || (self.view & m != 0 && !want.is_edit()) {
                continue;
            }
            while have.next_if(|h| h.key() < want.key()).is_some() {}
            if have
                .peek()
                .is_some_and(|h| h.key() == want.key() && h.0 >= want.0)
            {
                continue;
            }
            out.custom |= m;
            out.resources.push(want);
        }
        out
    }

    /// The wire form, one entry per domain, in catalog order.
    pub fn to_specs(&self) -> Vec<super::PrivilegeSpec> {
        self.iter()
            .map(|(d, g)| super::grant_to_spec(d, g))
            .collect()
    }
}

/// Whether `have` lists every entry of `want` at its level or higher (both sorted).
fn holds(have: &[Entry], want: &[Entry]) -> bool {
    if want.len() > have.len() {
        return false;
    }
    let mut have = have.iter().peekable();
    want.iter().all(|w| {
        while have.next_if(|h| h.key() < w.key()).is_some() {}
        have.peek()
            .is_some_and(|h| h.key() == w.key() && h.0 >= w.0)
    })
}

/// The merged Edit word, and the domains where one side's level rose: there
/// its per-resource levels at or below the new level go (all of them where
/// the level is now Edit, those at View where it is now View).
#[derive(Clone, Copy)]
struct Levels {
    edit: Domains,
    raised: Domains,
}

/// Merges the sorted entries `b` into the sorted entries `a`, in place: the
/// union, the higher level where both list a resource, pruned by `levels`.
/// Works backward domain by domain over the domains with entries in either
/// (`in_a`, `in_b`), from the end of `a` grown by `b.len()`, finding where
/// each run starts by a binary search. A domain whose level is now Edit is
/// skipped whole; where only one side lists a domain whose level did not
/// rise, its run moves as one block; entries are merged one by one only
/// where both list the domain, and filtered one by one only where a level
/// rose to View. Returns the domains left with entries. No allocation when
/// `a` has the capacity.
fn merge_runs(
    a: &mut Vec<Entry>,
    in_a: Domains,
    b: &[Entry],
    in_b: Domains,
    levels: Levels,
) -> Domains {
    let total = a.len() + b.len();
    let (mut i, mut j, mut w) = (a.len(), b.len(), total);
    a.resize(total, Entry(0));
    let mut left = in_a | in_b;
    let mut kept = 0;
    // Invariant: w >= i + j, so writing at w - 1 never overwrites an entry
    // of `a` not yet read.
    while left != 0 {
        let d = (Domains::BITS - 1 - left.leading_zeros()) as DomainId;
        let m = bit(d);
        left &= !m;
        let lo = domain_start(d);
        let ia = if in_a & m != 0 {
            a[..i].partition_point(|e| e.0 < lo)
        } else {
            i
        };
        let jb = if in_b & m != 0 {
            b[..j].partition_point(|e| e.0 < lo)
        } else {
            j
        };
        if levels.edit & m != 0 {
            // Edit all: no per-resource level is above it.
            (i, j) = (ia, jb);
            continue;
        }
        // Raised to View: only the Edit levels stay.
        let prune = levels.raised & m != 0;
        let before = w;
        // Both runs, entry by entry, from the end, without branches on the
        // data: entries order by key first, so the larger of the two is the
        // one to write (the higher level where the keys are equal), and each
        // side steps back where its key is the larger or equal. Writing at
        // w - 1 even when the entry is not kept is safe (w - 1 >= i + j).
        while i > ia && j > jb {
            let (x, y) = (a[i - 1], b[j - 1]);
            let e = x.max(y);
            i -= usize::from(x.key() >= y.key());
            j -= usize::from(y.key() >= x.key());
            a[w - 1] = e;
            w -= usize::from(!prune || e.is_edit());
        }
        // What is left of one run (the whole run where the other has none).
        if !prune {
            let n = i - ia;
            a.copy_within(ia..i, w - n);
            w -= n;
            let n = j - jb;
            a[w - n..w].copy_from_slice(&b[jb..j]);
            w -= n;
            (i, j) = (ia, jb);
        } else {
            while i > ia {
                i -= 1;
                if a[i].is_edit() {
                    w -= 1;
                    a[w] = a[i];
                }
            }
            while j > jb {
                j -= 1;
                if b[j].is_edit() {
                    w -= 1;
                    a[w] = b[j];
                }
            }
        }
        if w != before {
            kept |= m;
        }
    }
    if w > 0 {
        a.copy_within(w..total, 0);
    }
    a.truncate(total - w);
    kept
}

impl fmt::Debug for PrivilegeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{GROUPS, ORGANIZATION};

    fn grant(level: Level, resources: &[(&str, Level)]) -> Grant {
        Grant {
            level,
            abilities: Abilities::NONE,
            resources: resources
                .iter()
                .map(|(n, l)| (ResourceId::of(n), *l))
                .collect(),
        }
    }

    #[test]
    fn every_domain_has_a_bit() {
        assert!(CATALOG.len() <= Domains::BITS as usize);
        assert_ne!(*CREATES_WITH_EDIT, 0);
    }

    #[test]
    fn entries_order_by_domain_then_resource_then_level() {
        let (a, b) = (ResourceId::of("set-rs-a"), ResourceId::of("set-rs-b"));
        let (lo, hi) = (a.min(b), a.max(b));
        let e = |d, id, l| Entry::new(d, id, l);
        assert!(e(1, lo, Level::Edit) < e(1, hi, Level::View));
        assert!(e(1, hi, Level::Edit) < e(2, lo, Level::View));
        assert!(e(1, lo, Level::View) < e(1, lo, Level::Edit));
        let x = e(3, hi, Level::Edit);
        assert_eq!((x.domain(), x.id(), x.level()), (3, hi, Level::Edit));
    }

    #[test]
    fn set_get_and_iter_give_back_each_grant() {
        let (g, o) = (*GROUPS, *ORGANIZATION);
        let mut s = PrivilegeSet::new();
        s.set(
            g,
            grant(Level::View, &[("x", Level::Edit), ("y", Level::View)]),
        );
        s.set(o, grant(Level::View, &[]));
        // y is at the domain's level already: dropped.
        let got = s.get(g).unwrap();
        assert_eq!(got.level, Level::View);
        assert_eq!(got.level_on("x"), Level::Edit);
        assert_eq!(got.level_on("y"), Level::View);
        assert_eq!(got.resources.len(), 1);
        assert_eq!(s.len(), 2);
        let domains: Vec<DomainId> = s.iter().map(|(d, _)| d).collect();
        let mut sorted = vec![g, o];
        sorted.sort();
        assert_eq!(domains, sorted);
        s.set(g, Grant::default());
        assert_eq!(s.get(g), None);
        assert_eq!(s.len(), 1);
        assert!(s.resources.is_empty());
    }

    #[test]
    fn merge_prunes_resources_under_a_raised_level() {
        let g = *GROUPS;
        let mut a = PrivilegeSet::new();
        a.set(
            g,
            grant(Level::None, &[("p", Level::View), ("q", Level::Edit)]),
        );
        let mut b = PrivilegeSet::new();
        b.set(g, grant(Level::View, &[]));
        let m = a.merge(&b);
        let got = m.get(g).unwrap();
        assert_eq!(got.level, Level::View);
        assert_eq!(got.resources.iter().count(), 1);
        assert_eq!(got.level_on("q"), Level::Edit);
        assert!(m.covers(&a) && m.covers(&b));
        let mut c = PrivilegeSet::new();
        c.set(g, grant(Level::Edit, &[]));
        let all = m.merge(&c);
        assert!(all.get(g).unwrap().resources.is_empty());
        assert_eq!(all.custom, 0);
        assert!(all.get(g).unwrap().abilities.contains(Abilities::CREATE));
    }

    #[test]
    fn covers_and_missing_look_at_each_resource() {
        let g = *GROUPS;
        let mut have = PrivilegeSet::new();
        have.set(
            g,
            grant(Level::None, &[("r1", Level::Edit), ("r2", Level::View)]),
        );
        let mut want = PrivilegeSet::new();
        want.set(
            g,
            grant(Level::None, &[("r2", Level::Edit), ("r1", Level::View)]),
        );
        assert!(!have.covers(&want));
        let lack = have.missing(&want);
        assert_eq!(lack.get(g).unwrap().resources.len(), 1);
        assert_eq!(lack.get(g).unwrap().level_on("r2"), Level::Edit);
        assert!(have.merge(&lack).covers(&want));
        assert!(have.missing(&have).is_empty());
    }

    #[test]
    fn union_is_the_merge_of_all_in_one_allocation() {
        let (g, o) = (*GROUPS, *ORGANIZATION);
        let mut a = PrivilegeSet::new();
        a.set(
            g,
            grant(Level::None, &[("u1", Level::View), ("u2", Level::Edit)]),
        );
        let mut b = PrivilegeSet::new();
        b.set(g, grant(Level::View, &[("u3", Level::Edit)]));
        b.set(o, grant(Level::None, &[("u1", Level::Edit)]));
        let mut c = PrivilegeSet::new();
        c.set(o, grant(Level::Edit, &[]));
        let u = PrivilegeSet::union([&a, &b, &c]);
        assert_eq!(u, a.merge(&b).merge(&c));
        assert_eq!(u.get(g).unwrap().resources.len(), 2, "u1 at View went");
        assert_eq!(u.get(o).unwrap().resources.len(), 0, "Edit all");
        let room = a.resources.len() + b.resources.len() + c.resources.len();
        assert_eq!(u.resources.capacity(), room, "the union never grew");
        assert_eq!(PrivilegeSet::union([&b]), b);
        assert!(PrivilegeSet::union([]).is_empty());
    }

    /// Random sets checked against the meaning of merge and covers, domain by
    /// domain and resource by resource, through `get` (the reference model).
    #[test]
    fn merge_and_covers_agree_with_the_grant_by_grant_meaning() {
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 33) % n
        };
        let names: Vec<ResourceId> = (0..12)
            .map(|i| ResourceId::of(&format!("set-rs-{i}")))
            .collect();
        let levels = [Level::None, Level::View, Level::Edit];
        let random_set = |next: &mut dyn FnMut(u64) -> u64| {
            let mut s = PrivilegeSet::new();
            for _ in 0..next(8) {
                let d = next(CATALOG.len() as u64) as DomainId;
                let resources = (0..next(4))
                    .map(|_| (names[next(12) as usize], levels[1 + next(2) as usize]))
                    .collect();
                let g = Grant {
                    level: levels[next(3) as usize],
                    abilities: Abilities(next(8) as u8),
                    resources,
                };
                s.set(d, g);
            }
            s
        };
        let level_on = |s: &PrivilegeSet, d: DomainId, r: ResourceId| {
            s.get(d).map_or(Level::None, |g| g.level_on_id(r))
        };
        for _ in 0..2000 {
            let a = random_set(&mut next);
            let b = random_set(&mut next);
            let m = a.merge(&b);
            let mut covers = true;
            for d in 0..CATALOG.len() as DomainId {
                let (ga, gb) = (a.get(d).unwrap_or_default(), b.get(d).unwrap_or_default());
                let gm = m.get(d).unwrap_or_default();
                assert_eq!(gm.level, ga.level.max(gb.level));
                let mut abilities = ga.abilities.union(gb.abilities);
                if gm.level == Level::Edit && catalog::domain(d).offers.create != Create::No {
                    abilities = abilities.union(Abilities::CREATE);
                }
                assert_eq!(gm.abilities, abilities);
                covers &= ga.level >= gb.level && ga.abilities.contains(gb.abilities);
                for &r in &names {
                    let (la, lb) = (level_on(&a, d, r), level_on(&b, d, r));
                    assert_eq!(level_on(&m, d, r), la.max(lb));
                    covers &= la >= lb;
                }
                for (_, l) in gm.resources.iter() {
                    assert!(l > gm.level, "kept above the domain's level");
                }
            }
            assert_eq!(a.covers(&b), covers);
            assert_eq!(a.missing(&b).is_empty(), covers);
            assert_eq!(m, b.merge(&a));
            let mut again = PrivilegeSet::new();
            for (d, g) in m.iter() {
                again.set(d, g);
            }
            assert_eq!(again, m, "the set's form is canonical");
        }
    }
}
