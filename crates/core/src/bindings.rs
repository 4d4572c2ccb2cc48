//! Who set the fields that bind a principal to what it holds: the second-order
//! half of the escalation invariant (docs/security.md, "Over two steps").
//!
//! A *binding* is a field that decides who holds what an object grants: a
//! Member's Kubernetes subjects, identity, acceptance and each invitation; a
//! Group's identity sets; an API key's `enabled`. A binding set by an
//! untrusted requester counts as set by them, whoever later writes the
//! object: a later change by a trusted principal (a GitOps apply keeps the
//! fields its manifest does not name) must not grant through it more than its
//! setter could.
//!
//! Who set each binding is recorded on the object itself, in the annotation
//! [`ANNOTATION`]: a JSON object from binding key to the user who set it, for
//! the bindings an untrusted requester set. The admission webhook's mutating
//! half writes it ([`member`], [`group`], [`api_key`] compute it) and its
//! validating half refuses any other value, so nobody can forge or erase it:
//! the record is what admission saw. A trusted principal may drop entries (it
//! vouches for those bindings), never add or change one.
//!
//! This module is the data: the record, how a change updates it, and which
//! principals a change would grow through a recorded binding
//! ([`foreign_growth`]). The rules that use it (`BindingsRecorded`,
//! `ForeignBindings`) are in `rules.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::effective::{Grantees, Via, extends, member_groups, membership_end};
use crate::model::{AccessEntry, ApiKeyDef, GroupDef, MemberDef, Meta, OrgState};
use crate::privilege::{PrivilegeSet, PrivilegeSpec};

/// The annotation that records who set each binding.
pub const ANNOTATION: &str = "orgaccess.dev/bound-by";
/// A Member's `spec.subjects`.
pub const SUBJECTS: &str = "subjects";
/// A Member's `spec.identity`.
pub const IDENTITY: &str = "identity";
/// A Member's `spec.accepted` (when true).
pub const ACCEPTED: &str = "accepted";
/// A Member's `spec.until`, when a change extends or removes it: every
/// membership of the member, identity sets' included, lasts longer by it.
pub const UNTIL: &str = "until";
/// A Group's `spec.identitySets` (when not empty).
pub const IDENTITY_SETS: &str = "identitySets";
/// An ApiKey's `spec.enabled` (when true).
pub const ENABLED: &str = "enabled";
/// A Group's or ApiKey's grants: `spec.privileges`, `spec.template`,
/// `spec.access`. Recorded too: a later apply that does not name them keeps
/// them, and an explicit privilege narrows its template, so removing one can
/// widen what a template set later grants.
pub const PRIVILEGES: &str = "privileges";
pub const TEMPLATE: &str = "template";
pub const ACCESS: &str = "access";
/// The keys of a Group's or ApiKey's grant fields.
pub const GRANTS: [&str; 3] = [PRIVILEGES, TEMPLATE, ACCESS];
/// A Member's invitation to one group: `groups/<group>`.
pub const INVITATION: &str = "groups/";
/// The key standing for an annotation that could not be read: every binding
/// of the object counts as set by someone unknown until a trusted principal
/// drops it.
pub const UNREADABLE: &str = "*";
/// Longest annotation value read, in bytes (a record of a Member with 256
/// invitations by long user names fits well within it).
pub const MAX_ANNOTATION_BYTES: usize = 128 * 1024;

/// Binding key → the untrusted user who set it.
pub type BoundBy = BTreeMap<String, String>;

/// The binding key of an invitation to `group`.
pub fn invitation(group: &str) -> String {
    format!("{INVITATION}{group}")
}

/// Reads the annotation's value. Absent: nothing recorded. Unreadable (not a
/// JSON object of strings, or too long): one [`UNREADABLE`] entry.
pub fn parse(value: Option<&str>) -> BoundBy {
    let Some(value) = value else {
        return BoundBy::new();
    };
    if value.len() <= MAX_ANNOTATION_BYTES
        && let Ok(map) = serde_json::from_str::<BoundBy>(value)
    {
        return map;
    }
    BoundBy::from([(UNREADABLE.to_string(), "unknown".to_string())])
}

/// The annotation's value for a record, `None` when there is nothing to record.
pub fn render(bound: &BoundBy) -> Option<String> {
    (!bound.is_empty()).then(|| serde_json::to_string(bound).expect("a map of strings"))
}

/// Who writes a change, as the record sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setter<'a> {
    /// The operator or a trusted platform principal: its bindings are its own.
    Trusted,
    /// Anyone else, by user name.
    Untrusted(&'a str),
}

/// The binding keys a request names itself (its server-side apply
/// configuration, or the manifest of a client-side apply): a trusted request
/// that names a binding takes it over.
pub type Asserted = BTreeSet<String>;

/// One binding of the new version: its key, whether it grants anything now,
/// and whether this change set it.
struct Field {
    key: String,
    granting: bool,
    changed: bool,
}

/// The record after a change, from the record before (the old version's), the
/// bindings of the new version, who writes and what the request names.
fn settle(before: &BoundBy, fields: Vec<Field>, setter: Setter, asserted: &Asserted) -> BoundBy {
    let mut out = BoundBy::new();
    for f in fields.into_iter().filter(|f| f.granting) {
        match setter {
            Setter::Untrusted(user) if f.changed => {
                out.insert(f.key, user.to_string());
            }
            Setter::Trusted if f.changed || asserted.contains(&f.key) => {}
            _ => {
                if let Some(who) = before.get(&f.key) {
                    out.insert(f.key, who.clone());
                }
            }
        }
    }
    if let Some(who) = before.get(UNREADABLE) {
        out.insert(UNREADABLE.into(), who.clone());
    }
    out
}

/// The record of a Member after a change (`old` is `None` on a create).
pub fn member(
    old: Option<&MemberDef>,
    new: &MemberDef,
    setter: Setter,
    asserted: &Asserted,
) -> BoundBy {
    let mut fields = vec![
        Field {
            key: SUBJECTS.into(),
            granting: !new.subjects.is_empty(),
            changed: old.is_none_or(|o| o.subjects != new.subjects),
        },
        Field {
            key: IDENTITY.into(),
            granting: true,
            changed: old.is_none_or(|o| o.identity != new.identity),
        },
        Field {
            key: ACCEPTED.into(),
            granting: new.accepted,
            changed: old.is_none_or(|o| !o.accepted),
        },
    ];
    // An end extended or removed sets the binding anew (docs/time-bound-membership.md).
    let start = old
        .and_then(|o| o.invited_at)
        .or(new.invited_at)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let end = |m: &MemberDef, g: &str| membership_end(m, g, Via::Invitation, start);
    fields.push(Field {
        key: UNTIL.into(),
        granting: old.is_some(),
        changed: old.is_some_and(|o| {
            // The overall end alone: the one an identity-set membership has.
            let overall = |m: &MemberDef| membership_end(m, "", Via::IdentitySet, start);
            extends(overall(o), overall(new))
        }),
    });
    fields.extend(new.groups.iter().map(|g| Field {
        key: invitation(g),
        granting: true,
        changed: old.is_none_or(|o| !o.groups.contains(g) || extends(end(o, g), end(new, g))),
    }));
    let before = old.map(|o| &o.meta.bound_by);
    settle(before.unwrap_or(&BoundBy::new()), fields, setter, asserted)
}

/// A Group's or ApiKey's grant fields (privileges, template as a number,
/// access list).
type GrantFields<'a> = (&'a [PrivilegeSpec], Option<u8>, &'a [AccessEntry]);

/// A Group's or ApiKey's grant fields as bindings: each recorded when a
/// change sets it (on a create, when it is not empty; on an update, any
/// change, a removal too).
fn grants(old: Option<GrantFields>, new: GrantFields) -> Vec<Field> {
    let (privileges, template, access) = new;
    let created = old.is_none();
    vec![
        Field {
            key: PRIVILEGES.into(),
            granting: !created || !privileges.is_empty(),
            changed: old.is_none_or(|o| o.0 != privileges),
        },
        Field {
            key: TEMPLATE.into(),
            granting: !created || template.is_some(),
            changed: old.is_none_or(|o| o.1 != template),
        },
        Field {
            key: ACCESS.into(),
            granting: !created || !access.is_empty(),
            changed: old.is_none_or(|o| o.2 != access),
        },
    ]
}

/// The record of a Group after a change.
pub fn group(
    old: Option<&GroupDef>,
    new: &GroupDef,
    setter: Setter,
    asserted: &Asserted,
) -> BoundBy {
    let mut fields = vec![Field {
        key: IDENTITY_SETS.into(),
        granting: !new.identity_sets.is_empty(),
        changed: old.is_none_or(|o| o.identity_sets != new.identity_sets),
    }];
    fields.extend(grants(
        old.map(|o| {
            (
                &o.privileges[..],
                o.template.map(|t| t as u8),
                &o.access[..],
            )
        }),
        (&new.privileges, new.template.map(|t| t as u8), &new.access),
    ));
    let before = old.map(|o| &o.meta.bound_by);
    settle(before.unwrap_or(&BoundBy::new()), fields, setter, asserted)
}

/// The record of an API key after a change.
pub fn api_key(
    old: Option<&ApiKeyDef>,
    new: &ApiKeyDef,
    setter: Setter,
    asserted: &Asserted,
) -> BoundBy {
    let mut fields = vec![Field {
        key: ENABLED.into(),
        granting: new.enabled,
        changed: old.is_none_or(|o| !o.enabled),
    }];
    fields.extend(grants(
        old.map(|o| {
            (
                &o.privileges[..],
                o.template.map(|t| t as u8),
                &o.access[..],
            )
        }),
        (&new.privileges, new.template.map(|t| t as u8), &new.access),
    ));
    let before = old.map(|o| &o.meta.bound_by);
    settle(before.unwrap_or(&BoundBy::new()), fields, setter, asserted)
}

/// Is `written` a record this setter may leave? An untrusted requester's is
/// exactly `expected`; a trusted principal may also drop entries (vouching
/// for those bindings), never add or change one.
pub fn may_write(written: &BoundBy, expected: &BoundBy, setter: Setter) -> bool {
    match setter {
        Setter::Untrusted(_) => written == expected,
        Setter::Trusted => written.iter().all(|(k, v)| expected.get(k) == Some(v)),
    }
}

/// A principal that a change would make hold more through bindings someone
/// else set.
#[derive(Clone, Debug, PartialEq)]
pub struct Foreign {
    /// `member NAME` or `API key NAME`.
    pub principal: String,
    /// What it would gain.
    pub gained: PrivilegeSet,
    /// The recorded bindings it gains through: object, binding key, setter.
    pub bindings: Vec<(String, String, String)>,
}

/// What an accepted member holds through its groups (time plays no part: an
/// accepted member is active; any other holds nothing). Memberships' ends are
/// left out too: a membership counts here as if it never ended, so growth
/// through one that has ended is still judged (the cautious side).
fn member_holds(state: &OrgState, grantees: &Grantees, m: &MemberDef) -> PrivilegeSet {
    let mut set = PrivilegeSet::new();
    if !m.accepted {
        return set;
    }
    for (g, _) in member_groups(state, m) {
        if let Some(holds) = grantees.groups.get(&g) {
            set.merge_in(holds);
        }
    }
    set
}

/// What a key holds while enabled.
fn key_holds(grantees: &Grantees, k: &ApiKeyDef) -> PrivilegeSet {
    if !k.enabled {
        return PrivilegeSet::new();
    }
    grantees.api_keys.get(&k.name).cloned().unwrap_or_default()
}

/// How many members, groups and API keys of a state carry a record: what
/// ForeignBindings asks before anything else (most states have none, and
/// the rule then has nothing to do). [`Recorded::of`] counts by a
/// scan of every object; the webhook's index keeps the count as objects
/// come and go ([`Recorded::count`]), so a request does not scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    pub members: usize,
    pub groups: usize,
    pub api_keys: usize,
}

impl Recorded {
    /// The count of `state`, by a scan.
    pub fn of(state: &OrgState) -> Recorded {
        let count =
            |it: &mut dyn Iterator<Item = &Meta>| it.filter(|m| !m.bound_by.is_empty()).count();
        Recorded {
            members: count(&mut state.members.values().map(|m| &m.meta)),
            groups: count(&mut state.groups.values().map(|g| &g.meta)),
            api_keys: count(&mut state.api_keys.values().map(|k| &k.meta)),
        }
    }

    pub fn any(&self) -> bool {
        self.members + self.groups + self.api_keys > 0
    }

    /// Takes an object of `kind` out of the count (`sign` -1) or adds it
    /// (+1), by its metadata: the index calls it for the object it
    /// replaces and the one it puts. Organizations and reviews carry no
    /// record that counts.
    pub fn count(&mut self, kind: crate::model::Kind, meta: &Meta, sign: isize) {
        use crate::model::Kind;
        if meta.bound_by.is_empty() {
            return;
        }
        let n = match kind {
            Kind::Member => &mut self.members,
            Kind::Group => &mut self.groups,
            Kind::ApiKey => &mut self.api_keys,
            Kind::Organization | Kind::AccessReview => return,
        };
        *n = n.saturating_add_signed(sign);
    }
}

/// Every member and API key of `after` that holds more than in `before` and
/// holds it through a binding an untrusted requester set: one of its own
/// recorded bindings, or the identity sets of a group it is matched into.
pub fn foreign_growth(
    before: &OrgState,
    grantees_before: &Grantees,
    after: &OrgState,
    grantees_after: &Grantees,
) -> Vec<Foreign> {
    foreign_growth_among(before, grantees_before, after, grantees_after, None)
}

/// [`foreign_growth`], looking only at the members named in `members` (all
/// when `None`): a superset of those whose holdings differ between the two
/// states gives the same answer, since a member who holds the same gains
/// nothing (`rules::foreign_bindings::who_can_gain`).
pub fn foreign_growth_among(
    before: &OrgState,
    grantees_before: &Grantees,
    after: &OrgState,
    grantees_after: &Grantees,
    members: Option<&BTreeSet<String>>,
) -> Vec<Foreign> {
    let mut out = Vec::new();
    let recorded_groups: BTreeMap<&str, &BoundBy> = after
        .groups
        .values()
        .filter(|g| !g.meta.bound_by.is_empty())
        .map(|g| (g.name.as_str(), &g.meta.bound_by))
        .collect();
    let looked_at: Box<dyn Iterator<Item = &MemberDef>> = match members {
        Some(names) => Box::new(
            names
                .iter()
                .filter_map(|n| after.members.get(n))
                .map(Arc::as_ref),
        ),
        None => Box::new(after.members.values().map(Arc::as_ref)),
    };
    for m in looked_at {
        if m.meta.bound_by.is_empty() && recorded_groups.is_empty() {
            continue;
        }
        let now = member_holds(after, grantees_after, m);
        let was = before
            .members
            .get(&m.name)
            .map(|old| member_holds(before, grantees_before, old))
            .unwrap_or_default();
        let gained = was.missing(&now);
        if gained.is_empty() {
            continue;
        }
        // Who holds the member: its own bindings, whatever it gains through.
        let object = format!("Member {}", m.name);
        let mut bindings: Vec<(String, String, String)> = m
            .meta
            .bound_by
            .iter()
            .filter(|(k, _)| {
                [SUBJECTS, IDENTITY, ACCEPTED, UNTIL, UNREADABLE].contains(&k.as_str())
            })
            .map(|(k, who)| (object.clone(), k.clone(), who.clone()))
            .collect();
        // What it gains through: each group that brings part of the gain,
        // with what brings the member in and what the group grants.
        for (g, via) in member_groups(after, m) {
            let Some(holds) = grantees_after.groups.get(&g) else {
                continue;
            };
            if holds.missing(&gained) == gained {
                continue;
            }
            if via == Via::Invitation
                && let Some(who) = m.meta.bound_by.get(&invitation(&g))
            {
                bindings.push((object.clone(), invitation(&g), who.clone()));
            }
            if let Some(bound) = recorded_groups.get(g.as_str()) {
                for (k, who) in bound.iter() {
                    let counts = GRANTS.contains(&k.as_str())
                        || k == UNREADABLE
                        || (k == IDENTITY_SETS && via == Via::IdentitySet);
                    if counts {
                        bindings.push((format!("Group {g}"), k.clone(), who.clone()));
                    }
                }
            }
        }
        if !bindings.is_empty() {
            out.push(Foreign {
                principal: format!("member {}", m.name),
                gained,
                bindings,
            });
        }
    }
    for k in after.api_keys.values() {
        if k.meta.bound_by.is_empty() {
            continue;
        }
        let now = key_holds(grantees_after, k);
        let was = before
            .api_keys
            .get(&k.name)
            .map(|old| key_holds(grantees_before, old))
            .unwrap_or_default();
        let gained = was.missing(&now);
        if !gained.is_empty() {
            out.push(Foreign {
                principal: format!("API key {}", k.name),
                gained,
                bindings: k
                    .meta
                    .bound_by
                    .iter()
                    .map(|(b, who)| (format!("ApiKey {}", k.name), b.clone(), who.clone()))
                    .collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MemberIdentity, Provider, Subject, SubjectKind};

    fn alice() -> Subject {
        Subject {
            kind: SubjectKind::User,
            name: "alice".into(),
            namespace: None,
        }
    }

    fn dana(
        groups: &[&str],
        subjects: Vec<Subject>,
        accepted: bool,
        bound: &[(&str, &str)],
    ) -> MemberDef {
        let mut m = MemberDef {
            name: "dana".into(),
            identity: MemberIdentity {
                provider: Provider::Email,
                username: "dana@corp.example".into(),
            },
            groups: groups.iter().map(|g| g.to_string()).collect(),
            subjects,
            accepted,
            ..MemberDef::default()
        };
        m.meta.bound_by = bound
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        m
    }

    fn rec(entries: &[(&str, &str)]) -> BoundBy {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// One row of the Member table: case, old, new, setter, names the
    /// request asserts, expected record.
    type MemberCase<'a> = (
        &'a str,
        Option<MemberDef>,
        MemberDef,
        Setter<'a>,
        &'a Asserted,
        BoundBy,
    );

    /// An end extended by a tenant sets the binding it bounds anew; a
    /// shortened one does not (docs/time-bound-membership.md).
    #[test]
    fn an_extended_end_is_recorded_as_set_by_who_extended_it() {
        let ends = |group: Option<&str>, overall: Option<&str>| {
            let mut m = dana(&["ops"], vec![], true, &[("groups/ops", "gitops-era")]);
            if let Some(g) = group {
                m.group_until.insert("ops".into(), g.into());
            }
            m.until = overall.map(str::to_string);
            m
        };
        let (soon, later) = (Some("2030-01-01T00:00:00Z"), Some("2031-01-01T00:00:00Z"));
        let none = Asserted::new();
        let cases: Vec<MemberCase> = vec![
            (
                "an invitation's end moved later",
                Some(ends(soon, None)),
                ends(later, None),
                Setter::Untrusted("erin"),
                &none,
                rec(&[("groups/ops", "erin")]),
            ),
            (
                "an invitation's end removed",
                Some(ends(soon, None)),
                ends(None, None),
                Setter::Untrusted("erin"),
                &none,
                rec(&[("groups/ops", "erin")]),
            ),
            (
                "an invitation's end moved sooner keeps the record",
                Some(ends(later, None)),
                ends(soon, None),
                Setter::Untrusted("erin"),
                &none,
                rec(&[("groups/ops", "gitops-era")]),
            ),
            (
                "the overall end removed: every invitation, and `until`",
                Some(ends(None, soon)),
                ends(None, None),
                Setter::Untrusted("erin"),
                &none,
                rec(&[("groups/ops", "erin"), ("until", "erin")]),
            ),
            (
                "the overall end moved later but the invitation's own end still applies",
                Some(ends(soon, soon)),
                ends(soon, later),
                Setter::Untrusted("erin"),
                &none,
                rec(&[("groups/ops", "gitops-era"), ("until", "erin")]),
            ),
        ];
        for (what, old, new, setter, asserted, want) in cases {
            let got = member(old.as_ref(), &new, setter, asserted);
            assert_eq!(got, want, "{what}");
        }
    }

    /// How a Member's record follows its changes.
    #[test]
    fn a_members_record_follows_who_set_each_binding() {
        let none = Asserted::new();
        let subjects_named: Asserted = [SUBJECTS.to_string()].into();
        let cases: Vec<MemberCase> = vec![
            (
                "a tenant's create records every granting binding",
                None,
                dana(&["ops"], vec![alice()], false, &[]),
                Setter::Untrusted("alice"),
                &none,
                rec(&[
                    ("groups/ops", "alice"),
                    ("identity", "alice"),
                    ("subjects", "alice"),
                ]),
            ),
            (
                "a trusted create records nothing",
                None,
                dana(&["ops"], vec![alice()], true, &[]),
                Setter::Trusted,
                &none,
                rec(&[]),
            ),
            (
                "a trusted apply that does not name subjects keeps the tenant's record",
                Some(dana(
                    &[],
                    vec![alice()],
                    false,
                    &[("identity", "alice"), ("subjects", "alice")],
                )),
                dana(
                    &["administrators"],
                    vec![alice()],
                    true,
                    &[("identity", "alice"), ("subjects", "alice")],
                ),
                Setter::Trusted,
                &none,
                rec(&[("identity", "alice"), ("subjects", "alice")]),
            ),
            (
                "a trusted apply that names subjects takes them over",
                Some(dana(&[], vec![alice()], false, &[("subjects", "alice")])),
                dana(
                    &["administrators"],
                    vec![alice()],
                    true,
                    &[("subjects", "alice")],
                ),
                Setter::Trusted,
                &subjects_named,
                rec(&[]),
            ),
            (
                "a tenant accepting records the acceptance",
                Some(dana(&["ops"], vec![], false, &[])),
                dana(&["ops"], vec![], true, &[]),
                Setter::Untrusted("bob"),
                &none,
                rec(&[("accepted", "bob")]),
            ),
            (
                "removed bindings leave the record",
                Some(dana(
                    &["ops"],
                    vec![alice()],
                    true,
                    &[
                        ("subjects", "alice"),
                        ("groups/ops", "alice"),
                        ("accepted", "alice"),
                    ],
                )),
                dana(
                    &[],
                    vec![],
                    false,
                    &[
                        ("subjects", "alice"),
                        ("groups/ops", "alice"),
                        ("accepted", "alice"),
                    ],
                ),
                Setter::Untrusted("bob"),
                &none,
                rec(&[]),
            ),
            (
                "an unchanged binding keeps its setter whoever writes",
                Some(dana(
                    &["ops"],
                    vec![alice()],
                    true,
                    &[("subjects", "alice")],
                )),
                dana(
                    &["ops", "dev"],
                    vec![alice()],
                    true,
                    &[("subjects", "alice")],
                ),
                Setter::Untrusted("bob"),
                &none,
                rec(&[("subjects", "alice"), ("groups/dev", "bob")]),
            ),
            (
                "an unreadable record stays until a trusted principal drops it",
                Some(dana(&[], vec![], false, &[("*", "unknown")])),
                dana(&[], vec![], false, &[("*", "unknown")]),
                Setter::Trusted,
                &none,
                rec(&[("*", "unknown")]),
            ),
        ];
        for (case, old, new, setter, asserted, want) in cases {
            assert_eq!(member(old.as_ref(), &new, setter, asserted), want, "{case}");
        }
    }

    #[test]
    fn groups_and_keys_record_their_one_binding() {
        let none = Asserted::new();
        let mut g = GroupDef {
            name: "ops".into(),
            ..GroupDef::default()
        };
        assert!(group(None, &g, Setter::Untrusted("alice"), &none).is_empty());
        g.identity_sets.push(crate::model::IdentitySet {
            open_id_domain: None,
            sso_group: Some("dev".into()),
            salesforce_profile: None,
        });
        assert_eq!(
            group(None, &g, Setter::Untrusted("alice"), &none),
            rec(&[("identitySets", "alice")])
        );
        let disabled = ApiKeyDef {
            name: "k".into(),
            enabled: false,
            ..ApiKeyDef::default()
        };
        let enabled = ApiKeyDef {
            enabled: true,
            ..disabled.clone()
        };
        assert_eq!(
            api_key(Some(&disabled), &enabled, Setter::Untrusted("alice"), &none),
            rec(&[("enabled", "alice")])
        );
        assert!(api_key(Some(&disabled), &enabled, Setter::Trusted, &none).is_empty());
    }

    #[test]
    fn who_may_write_which_record() {
        let expected = rec(&[("subjects", "alice"), ("identity", "alice")]);
        let fewer = rec(&[("identity", "alice")]);
        let forged = rec(&[("identity", "mallory")]);
        let cases = [
            (
                "an untrusted requester writes exactly the record",
                &expected,
                Setter::Untrusted("alice"),
                true,
            ),
            (
                "an untrusted requester cannot drop an entry",
                &fewer,
                Setter::Untrusted("alice"),
                false,
            ),
            (
                "a trusted principal may drop entries",
                &fewer,
                Setter::Trusted,
                true,
            ),
            (
                "nobody may change a setter",
                &forged,
                Setter::Trusted,
                false,
            ),
            (
                "nobody may change a setter, untrusted either",
                &forged,
                Setter::Untrusted("alice"),
                false,
            ),
        ];
        for (case, written, setter, ok) in cases {
            assert_eq!(may_write(written, &expected, setter), ok, "{case}");
        }
    }

    #[test]
    fn unreadable_records_count_as_unknown_setters() {
        assert_eq!(parse(Some("not json")), rec(&[("*", "unknown")]));
        assert_eq!(
            parse(Some(r#"{"subjects":"alice"}"#)),
            rec(&[("subjects", "alice")])
        );
        assert!(parse(None).is_empty());
        assert_eq!(render(&BoundBy::new()), None);
    }
}
