//! Email template rendering: `{{namespace.field}}` placeholders from a whitelist, nothing
//! else (no logic, no includes). Unknown variables are refused when a template is saved, so
//! rendering never meets one; values are HTML-escaped in HTML bodies.

use std::collections::{BTreeMap, BTreeSet};

/// Variables a CRM template may use (contact, company, deal and sender data).
pub const TEMPLATE_VARIABLES: &[&str] = &[
    "contact.first_name",
    "contact.last_name",
    "contact.full_name",
    "contact.email",
    "contact.phone",
    "contact.job_title",
    "company.name",
    "deal.title",
    "deal.value",
    "deal.currency",
    "deal.stage",
    "deal.expected_close_date",
    "user.first_name",
    "user.last_name",
    "user.full_name",
    "user.email",
];

/// Why a template text does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// `{{` without a matching `}}`.
    Unclosed,
    /// Placeholders that are not in the whitelist (sorted, deduplicated).
    Unknown(Vec<String>),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unclosed => f.write_str("a '{{' is not closed by '}}'"),
            Self::Unknown(names) => write!(f, "unknown variables: {}", names.join(", ")),
        }
    }
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn parse(text: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        pieces.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(TemplateError::Unclosed)?;
        pieces.push(Piece::Var(after[..end].trim()));
        rest = &after[end + 2..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

/// The variables `text` uses, checked against `allowed`.
pub fn variables(text: &str, allowed: &[&str]) -> Result<BTreeSet<String>, TemplateError> {
    let mut used = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    for piece in parse(text)? {
        if let Piece::Var(name) = piece {
            if allowed.contains(&name) {
                used.insert(name.to_owned());
            } else {
                unknown.insert(name.chars().take(60).collect::<String>());
            }
        }
    }
    if unknown.is_empty() { Ok(used) } else { Err(TemplateError::Unknown(unknown.into_iter().collect())) }
}

/// How values are inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    None,
    Html,
}

/// Values of the variables for one rendering. Variables without a value render empty and
/// are reported by [`Rendered::missing`].
#[derive(Debug, Clone, Default)]
pub struct Values(BTreeMap<&'static str, String>);

impl Values {
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.0.insert(name, value.into());
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Renders `text`; `missing` collects variables with no value.
pub fn render(text: &str, values: &Values, escape: Escape, missing: &mut BTreeSet<String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    for piece in parse(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(name) => match values.get(name).filter(|v| !v.is_empty()) {
                Some(v) if escape == Escape::Html => out.push_str(&html_escape(v)),
                Some(v) => out.push_str(v),
                None => {
                    missing.insert(name.to_owned());
                }
            },
        }
    }
    Ok(out)
}

pub fn html_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes the escapes an href may contain (`&amp;` and friends).
pub fn html_unescape(value: &str) -> String {
    value.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// A plain-text version of an HTML body, for emails sent without one: tags dropped,
/// entities decoded, whitespace collapsed.
pub fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    html_unescape(&text).split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variables_and_refuses_unknown_ones() {
        let used = variables("Hi {{contact.first_name}}, {{ deal.title }}!", TEMPLATE_VARIABLES).unwrap();
        assert_eq!(used.into_iter().collect::<Vec<_>>(), ["contact.first_name", "deal.title"]);
        assert_eq!(
            variables("{{contact.password}} {{ x }}", TEMPLATE_VARIABLES),
            Err(TemplateError::Unknown(vec!["contact.password".into(), "x".into()]))
        );
        assert_eq!(variables("Hi {{contact.first_name", TEMPLATE_VARIABLES), Err(TemplateError::Unclosed));
        assert!(variables("no variables } { here", TEMPLATE_VARIABLES).unwrap().is_empty());
    }

    #[test]
    fn renders_with_html_escaping_and_reports_missing_values() {
        let mut values = Values::default();
        values.set("contact.first_name", "<b>Ann</b> & co");
        let mut missing = BTreeSet::new();
        let html = render("<p>Hi {{contact.first_name}} {{deal.title}}</p>", &values, Escape::Html, &mut missing).unwrap();
        assert_eq!(html, "<p>Hi &lt;b&gt;Ann&lt;/b&gt; &amp; co </p>");
        assert_eq!(missing.into_iter().collect::<Vec<_>>(), ["deal.title"]);
        let text = render("Hi {{contact.first_name}}", &values, Escape::None, &mut BTreeSet::new()).unwrap();
        assert_eq!(text, "Hi <b>Ann</b> & co");
    }

    #[test]
    fn html_to_text_strips_tags() {
        assert_eq!(html_to_text("<p>Hello&nbsp;<b>you</b> &amp; me</p>\n<p>Bye</p>"), "Hello&nbsp; you & me Bye");
        assert_eq!(html_unescape(&html_escape("a&b<\"'>")), "a&b<\"'>");
    }
}
