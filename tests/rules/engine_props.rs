//! Algebraic properties of merge, covers and missing, over arbitrary valid sets.

use crate::generators;

use orgaccess::core::builtin::GroupTemplate;
use orgaccess::core::catalog::CATALOG;
use orgaccess::core::privilege::{PrivilegeSet, parse_all};
use proptest::prelude::*;

/// Resource names of Custom grants; `*` stands for every resource.
const RESOURCES: [&str; 6] = ["a", "b", "c", "d", "e", "*"];

fn arb_set() -> impl Strategy<Value = PrivilegeSet> {
    let entry = (
        0..CATALOG.len(),
        any::<u8>(),
        any::<bool>(),
        prop::collection::vec((0..RESOURCES.len(), any::<bool>()), 1..4),
    );
    prop::collection::vec(entry, 0..12).prop_map(|entries| {
        let specs: Vec<_> = entries
            .into_iter()
            .map(|(i, p, c, r)| generators::privilege(&RESOURCES, i, p, c, r))
            .collect();
        parse_all(&specs).expect("generated privileges are valid")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn merge_is_commutative(a in arb_set(), b in arb_set()) {
        prop_assert_eq!(a.merge(&b), b.merge(&a));
    }

    #[test]
    fn merge_is_associative(a in arb_set(), b in arb_set(), c in arb_set()) {
        prop_assert_eq!(a.merge(&b).merge(&c), a.merge(&b.merge(&c)));
    }

    #[test]
    fn merge_is_idempotent(a in arb_set()) {
        prop_assert_eq!(a.merge(&a), a);
    }

    #[test]
    fn merge_covers_both_sides(a in arb_set(), b in arb_set()) {
        let m = a.merge(&b);
        prop_assert!(m.covers(&a));
        prop_assert!(m.covers(&b));
    }

    #[test]
    fn merge_is_the_least_upper_bound(a in arb_set(), b in arb_set(), c in arb_set()) {
        // Anything covering both covers their merge.
        let ab = a.merge(&b);
        let upper = ab.merge(&c);
        prop_assert!(upper.covers(&ab));
        if c.covers(&a) && c.covers(&b) {
            prop_assert!(c.covers(&ab));
        }
    }

    #[test]
    fn covers_is_reflexive(a in arb_set()) {
        prop_assert!(a.covers(&a));
    }

    #[test]
    fn covers_is_transitive(a in arb_set(), b in arb_set(), c in arb_set()) {
        // Build chains that do cover, so the implication is exercised.
        let ab = a.merge(&b);
        let abc = ab.merge(&c);
        prop_assert!(abc.covers(&ab) && ab.covers(&a) && abc.covers(&a));
        if a.covers(&b) && b.covers(&c) {
            prop_assert!(a.covers(&c));
        }
    }

    #[test]
    fn strictly_covers_is_irreflexive(a in arb_set()) {
        prop_assert!(!a.strictly_covers(&a));
    }

    #[test]
    fn strictly_covers_is_asymmetric(a in arb_set(), b in arb_set()) {
        prop_assert!(!(a.strictly_covers(&b) && b.strictly_covers(&a)));
    }

    #[test]
    fn administrators_cover_every_valid_set(a in arb_set()) {
        prop_assert!(GroupTemplate::Administrators.privileges().covers(&a));
    }

    #[test]
    fn missing_is_empty_exactly_when_covered(a in arb_set(), b in arb_set()) {
        prop_assert_eq!(a.missing(&b).is_empty(), a.covers(&b));
        // What is missing is exactly what keeps a from covering b.
        prop_assert!(a.merge(&a.missing(&b)).covers(&b));
        prop_assert!(b.covers(&a.missing(&b)));
    }

    #[test]
    fn wire_form_round_trips(a in arb_set()) {
        prop_assert_eq!(parse_all(&a.to_specs()).unwrap(), a);
    }
}
