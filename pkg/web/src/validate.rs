//! Input rules shared by every service (parse, don't validate): each checker records what is
//! wrong in a [`FieldErrors`] and returns the normalized value, so a handler reports every bad
//! field at once.

use crate::{ApiError, FieldErrors, Role};

/// Most ids one batch lookup (`GET /<resource>/basic?ids=`) takes.
pub const MAX_BATCH_IDS: usize = 500;

/// A pragmatic email check (one `@`, a non-empty local part, a dotted domain, no spaces or
/// control characters, at most 254 bytes), lowercased: emails are unique per tenant
/// case-insensitively everywhere on the platform.
pub fn email(errors: &mut FieldErrors, field: &str, raw: &str) -> String {
    let email = raw.trim().to_lowercase();
    if !is_email(&email) {
        errors.add(field, "invalid email format");
    }
    email
}

pub fn is_email(email: &str) -> bool {
    email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local.len() <= 64
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || c == ',')
}

/// Required text: trimmed, not empty, at most `max` characters, no control characters.
pub fn text(errors: &mut FieldErrors, field: &str, raw: &str, max: usize) -> String {
    let value = raw.trim().to_owned();
    if value.is_empty() {
        errors.add(field, "must not be empty");
    } else if value.chars().count() > max {
        errors.add(field, format!("must be at most {max} characters"));
    } else if !is_single_line(&value) {
        errors.add(field, "must not contain control characters");
    }
    value
}

/// An optional single-line value (a name, a title, a phone number, a subject): trimmed, at
/// most `max` characters, and no control characters at all (CR/LF in a single-line field
/// becomes header injection in an email, a broken CSV row, a forged log line). Empty -> `None`.
pub fn line(errors: &mut FieldErrors, field: &str, raw: Option<&str>, max: usize) -> Option<String> {
    let value = raw.map(str::trim).filter(|v| !v.is_empty())?;
    if value.chars().count() > max {
        errors.add(field, format!("must be at most {max} characters"));
    } else if !is_single_line(value) {
        errors.add(field, "must be a single line without control characters");
    }
    Some(value.to_owned())
}

/// Whether `value` has no control characters and no Unicode line or paragraph separator
/// (U+2028, U+2029), which break lines as well as CR/LF do (single-line fields).
pub fn is_single_line(value: &str) -> bool {
    !value.chars().any(breaks_line)
}

fn breaks_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Multi-line text (notes, descriptions, email bodies): at most `max` characters; line
/// breaks and tabs are fine, other control characters are not.
pub fn multiline(errors: &mut FieldErrors, field: &str, raw: &str, max: usize) {
    if raw.chars().count() > max {
        errors.add(field, format!("must be at most {max} characters"));
    } else if raw.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        errors.add(field, "must not contain control characters other than line breaks and tabs");
    }
}

/// The roles a member can hold (not `service`, which only service tokens carry).
pub fn member_role(errors: &mut FieldErrors, field: &str, raw: &str) -> Option<Role> {
    match raw.parse::<Role>() {
        Ok(role) if role != Role::Service => Some(role),
        _ => {
            errors.add(field, "must be one of: admin, manager, sales_rep, viewer");
            None
        }
    }
}

/// `?ids=1,2,3` (the parameter named `field`): 1 to [`MAX_BATCH_IDS`] positive integers,
/// sorted and deduplicated.
pub fn batch_ids(field: &str, raw: Option<&str>) -> Result<Vec<i32>, ApiError> {
    let raw = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::validation([(field, format!("required: {field}=1,2,3"))]))?;
    let mut ids = Vec::new();
    for part in raw.split(',') {
        match part.trim().parse::<i32>() {
            Ok(id) if id > 0 => ids.push(id),
            _ => return Err(ApiError::validation([(field, "must be a comma-separated list of positive integers".to_owned())])),
        }
        if ids.len() > MAX_BATCH_IDS {
            return Err(ApiError::validation([(field, format!("at most {MAX_BATCH_IDS} ids"))]));
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "John.Doe+crm@Example.COM", "ÄÖ@exämple.de"] {
            let mut e = FieldErrors::new();
            email(&mut e, "email", ok);
            assert!(e.is_empty(), "{ok}");
        }
        for bad in ["", "a", "a@b", "@b.co", "a@b..co", "a b@c.de", "a@@b.co", "a@.b.co", "a@b.de.", "a,b@c.de"] {
            let mut e = FieldErrors::new();
            email(&mut e, "email", bad);
            assert!(!e.is_empty(), "{bad}");
        }
        let mut e = FieldErrors::new();
        assert_eq!(email(&mut e, "email", "  Boss@Acme.Example "), "boss@acme.example");
    }

    #[test]
    fn texts() {
        let mut e = FieldErrors::new();
        assert_eq!(text(&mut e, "name", "  Acme ", 10), "Acme");
        assert!(e.is_empty());
        for bad in ["", "   ", "12345678901", "a\u{0}b"] {
            let mut e = FieldErrors::new();
            text(&mut e, "name", bad, 10);
            assert!(!e.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn lines_refuse_line_breaks_and_multiline_allows_them() {
        for bad in ["Bob\r\nBcc: x@y.example", "a\nb", "tab\there", "nul\u{0}", "\u{1b}[31m", "a\u{2028}b", "a\u{85}b"] {
            let mut e = FieldErrors::new();
            line(&mut e, "first_name", Some(bad), 100);
            assert!(!e.is_empty(), "{bad:?}");
        }
        let mut e = FieldErrors::new();
        assert_eq!(line(&mut e, "first_name", Some("  Íñigo 王小明 "), 100).as_deref(), Some("Íñigo 王小明"));
        assert_eq!(line(&mut e, "first_name", Some("  "), 100), None);
        multiline(&mut e, "notes", "line 1\r\nline 2\tend", 100);
        assert!(e.is_empty());
        multiline(&mut e, "notes", "bell\u{7}", 100);
        assert!(!e.is_empty());
    }

    #[test]
    fn roles() {
        let mut e = FieldErrors::new();
        assert_eq!(member_role(&mut e, "role", "sales_rep"), Some(Role::SalesRep));
        assert_eq!(member_role(&mut e, "role", "service"), None);
        assert_eq!(member_role(&mut e, "role", "emperor"), None);
    }

    #[test]
    fn ids() {
        assert_eq!(batch_ids("ids", Some("3, 1,2,3")).unwrap(), vec![1, 2, 3]);
        for bad in [None, Some(""), Some("1,x"), Some("0"), Some("-1"), Some("1,,2")] {
            assert!(batch_ids("ids", bad).is_err(), "{bad:?}");
        }
        let many = (1..=501).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        assert!(batch_ids("ids", Some(&many)).is_err());
    }
}
