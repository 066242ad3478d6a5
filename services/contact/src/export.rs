//! Writing the CSV export (no database here): the columns the import reads back, one chunk
//! per page of contacts, with spreadsheet formulas neutralized.

use axum::body::Bytes;
use crm_client_contact::ContactDetails;
use crm_web::ApiError;

/// `marketing_consent` and `last_contacted_at` are exported for reference only: the import
/// ignores them (consent is recorded with its own source through `PUT /contacts/{id}/consent`,
/// never copied without evidence; the last contact comes from activities and emails).
const EXPORT_HEADER: [&str; 24] = [
    "id", "first_name", "last_name", "email", "phone", "job_title", "company_id", "company", "owner_id", "status", "source",
    "street", "city", "state", "country", "postal_code", "tags", "custom_fields", "notes", "created_at", "created_by", "updated_at",
    "marketing_consent", "last_contacted_at",
];

/// One chunk of the export: `rows`, after the header row when `header`.
pub fn csv_chunk(header: bool, rows: &[ContactDetails]) -> Result<Bytes, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 200));
    let mut write = || -> Result<(), csv::Error> {
        if header {
            w.write_record(EXPORT_HEADER)?;
        }
        for c in rows {
            let custom = serde_json::to_string(&c.custom_fields).unwrap_or_else(|_| "{}".into());
            w.write_record([
                c.id.to_string().as_str(),
                // A leading = + - @ would be a formula in a spreadsheet: neutralized.
                &safe_cell(&c.first_name),
                &safe_cell(&c.last_name),
                &safe_cell(&c.email),
                &safe_cell(&c.phone),
                &safe_cell(&c.job_title),
                &c.company_id.map(|v| v.to_string()).unwrap_or_default(),
                &safe_cell(c.company_name.as_deref().unwrap_or("")),
                &c.owner_id.map(|v| v.to_string()).unwrap_or_default(),
                c.status.as_str(),
                &safe_cell(&c.source),
                &safe_cell(&c.address.street),
                &safe_cell(&c.address.city),
                &safe_cell(&c.address.state),
                &safe_cell(&c.address.country),
                &safe_cell(&c.address.postal_code),
                &safe_cell(&c.tags.join(",")),
                &custom,
                &safe_cell(&c.notes),
                &c.created_at.to_rfc3339(),
                &c.created_by.to_string(),
                &c.updated_at.to_rfc3339(),
                c.marketing_consent.as_str(),
                &c.last_contacted_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            ])?;
        }
        w.flush()?;
        Ok(())
    };
    write().map_err(ApiError::internal)?;
    w.into_inner().map(Bytes::from).map_err(|e| ApiError::internal(e.to_string()))
}

/// A value a spreadsheet would run as a formula (leading `=`, `+`, `-`, `@`; phone numbers
/// such as `+1 555` excepted) gets a leading apostrophe; so does a value that already starts
/// with an apostrophe followed by one of those (or another apostrophe), so that the import
/// ([`crate::import::unguard`]) can remove exactly the apostrophe added here.
pub fn safe_cell(v: &str) -> String {
    let formula = v.starts_with(['=', '+', '-', '@']) && !v.chars().all(|c| c.is_ascii_digit() || " +-().x/".contains(c));
    let ambiguous = v.strip_prefix('\'').is_some_and(|rest| rest.starts_with(['=', '+', '-', '@', '\'']));
    if formula || ambiguous { format!("'{v}") } else { v.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::unguard;

    #[test]
    fn guards_are_removed_exactly_on_import() {
        for v in ["@SUM(1+1)", "=1+1", "-x", "+y", "'@x", "''=x", "'tis", "'", "plain", "+1 555 0100", "-5", "王小明", ""] {
            assert_eq!(unguard(&safe_cell(v)), v, "{v:?}");
        }
        assert_eq!(safe_cell("@SUM(1+1)"), "'@SUM(1+1)");
        assert_eq!(safe_cell("+1 555 0100"), "+1 555 0100");
    }
}
