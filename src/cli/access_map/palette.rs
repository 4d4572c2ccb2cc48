//! The access map's colours: one background and one text colour per level,
//! and the marks of a comparison. The page's CSS is written from this table,
//! and the unit tests hold every pair to WCAG 2.x AA for normal text (a
//! contrast ratio of at least 4.5:1). Colour is never the only signal: every
//! cell names its level in words.

use crate::core::privilege::AccessLevel;

/// How one level looks: its CSS class, its words, its colours.
#[derive(Clone, Copy, Debug)]
pub struct Swatch {
    /// The CSS class of a cell at this level (short: the page has one per cell).
    pub class: &'static str,
    /// What the cell says.
    pub label: &'static str,
    /// What the legend says it means.
    pub meaning: &'static str,
    pub background: &'static str,
    pub text: &'static str,
}

/// Every level, in increasing order of what it gives.
pub const LEVELS: [(AccessLevel, Swatch); 7] = [
    (
        AccessLevel::None,
        Swatch {
            class: "L0",
            label: "None",
            meaning: "no privilege on the domain",
            background: "#f4f4f5",
            text: "#52525b",
        },
    ),
    (
        AccessLevel::View,
        Swatch {
            class: "Lv",
            label: "View",
            meaning: "view every resource of the domain",
            background: "#dbeafe",
            text: "#1e3a8a",
        },
    ),
    (
        AccessLevel::Push,
        Swatch {
            class: "Lp",
            label: "Push",
            meaning: "send usage-analytics events",
            background: "#ccfbf1",
            text: "#134e4a",
        },
    ),
    (
        AccessLevel::PushAndView,
        Swatch {
            class: "Lq",
            label: "PushAndView",
            meaning: "send usage-analytics events and view the data",
            background: "#cffafe",
            text: "#164e63",
        },
    ),
    (
        AccessLevel::Custom,
        Swatch {
            class: "Lc",
            label: "Custom",
            meaning: "a level per resource (the details list them)",
            background: "#dcfce7",
            text: "#14532d",
        },
    ),
    (
        AccessLevel::Edit,
        Swatch {
            class: "Le",
            label: "Edit",
            meaning: "edit every resource of the domain (with Can Create where the domain creates)",
            background: "#ffedd5",
            text: "#7c2d12",
        },
    ),
    (
        AccessLevel::Allowed,
        Swatch {
            class: "La",
            label: "Allowed",
            meaning: "the action is allowed (Administrate, Impersonate, ...)",
            background: "#fce7f3",
            text: "#831843",
        },
    ),
];

/// The swatch of a level.
pub fn swatch(level: AccessLevel) -> &'static Swatch {
    LEVELS
        .iter()
        .find(|(l, _)| *l == level)
        .map(|(_, s)| s)
        .unwrap_or(&LEVELS[0].1)
}

/// The page's other text on its background: body text, muted text, links,
/// the marks of a comparison (drawn as an outline plus a symbol and words).
pub const PAGE_BACKGROUND: &str = "#ffffff";
pub const PAGE_TEXT: &str = "#18181b";
pub const MUTED_TEXT: &str = "#52525b";
pub const LINK: &str = "#1d4ed8";
pub const GAINED: &str = "#166534";
pub const LOST: &str = "#991b1b";
pub const CHANGED: &str = "#6b21a8";
pub const FOCUS: &str = "#000000";

/// `#rrggbb` as three channels in 0..=1.
fn rgb(hex: &str) -> Option<[f64; 3]> {
    let h = hex.strip_prefix('#')?;
    if h.len() != 6 {
        return None;
    }
    let c = |i: usize| {
        u8::from_str_radix(&h[i..i + 2], 16)
            .ok()
            .map(|v| v as f64 / 255.0)
    };
    Some([c(0)?, c(2)?, c(4)?])
}

/// WCAG 2.x relative luminance.
pub fn luminance(hex: &str) -> Option<f64> {
    let lin = |c: f64| {
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = rgb(hex)?;
    Some(0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b))
}

/// WCAG 2.x contrast ratio of two colours (1 to 21).
pub fn contrast(a: &str, b: &str) -> Option<f64> {
    let (la, lb) = (luminance(a)?, luminance(b)?);
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    Some((hi + 0.05) / (lo + 0.05))
}

/// AA for normal-size text.
pub const AA: f64 = 4.5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contrast_formula_matches_known_pairs() {
        // Black on white is 21:1; white on white 1:1; #767676 on white is
        // the classic 4.54:1, just above AA.
        assert!((contrast("#000000", "#ffffff").unwrap() - 21.0).abs() < 1e-9);
        assert!((contrast("#ffffff", "#ffffff").unwrap() - 1.0).abs() < 1e-9);
        let grey = contrast("#767676", "#ffffff").unwrap();
        assert!((4.53..4.55).contains(&grey), "{grey}");
        assert!(contrast("#777777", "#ffffff").unwrap() < AA);
        assert_eq!(contrast("#fff", "#000000"), None);
        assert_eq!(contrast("ffffff", "#000000"), None);
    }

    #[test]
    fn every_level_is_readable_on_its_colour() {
        for (level, s) in LEVELS {
            let ratio = contrast(s.text, s.background).unwrap();
            assert!(
                ratio >= AA,
                "{level:?}: {} on {} is {ratio:.2}:1, below {AA}:1",
                s.text,
                s.background
            );
            // The focus outline stands out against every cell (WCAG 1.4.11: 3:1).
            let focus = contrast(FOCUS, s.background).unwrap();
            assert!(focus >= 3.0, "{level:?}: focus outline {focus:.2}:1");
            // The marks of a comparison are words in these colours on the cell.
            for mark in [GAINED, LOST, CHANGED] {
                let r = contrast(mark, s.background).unwrap();
                assert!(
                    r >= AA,
                    "{level:?}: mark {mark} on {} is {r:.2}:1",
                    s.background
                );
            }
        }
    }

    #[test]
    fn the_page_text_is_readable() {
        for fg in [PAGE_TEXT, MUTED_TEXT, LINK, GAINED, LOST, CHANGED] {
            let r = contrast(fg, PAGE_BACKGROUND).unwrap();
            assert!(r >= AA, "{fg} on the page: {r:.2}:1");
        }
    }

    #[test]
    fn every_level_has_one_distinct_swatch() {
        let mut classes: Vec<&str> = LEVELS.iter().map(|(_, s)| s.class).collect();
        classes.sort();
        classes.dedup();
        assert_eq!(classes.len(), LEVELS.len());
        for (level, s) in LEVELS {
            assert_eq!(swatch(level).class, s.class);
            // The cell's words are the level's name, as explain prints it.
            assert_eq!(s.label, format!("{level:?}"));
        }
    }
}
