//! The bounds of the text admission answers carry (the apiserver keeps at
//! most 4 KiB of warnings per response), and the one way text is cut to a
//! bound. Beneath everything that writes such text: the rules' denial
//! message (`rules::denial_message`), the warnings (`warnings.rs`) and the
//! advisor's warnings (`advice::warnings`).

/// Most warnings for one change; beyond it the last one counts the rest.
/// The apiserver keeps at most 4 KiB of warnings per response.
pub const MAX_WARNINGS: usize = 10;
/// Longest warning, in bytes: the apiserver may cut longer ones.
pub const MAX_WARNING_BYTES: usize = 256;

/// Cuts `s` to at most `max` bytes (`max` >= 3) on a character boundary, marking the cut.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max.saturating_sub(3);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}
