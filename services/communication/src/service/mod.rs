//! The use cases of communication-service, one module per resource. A request's use case
//! takes the caller's proof of permission ([`crm_web::Can`], checked by the handler's
//! extractor; rules beyond the matrix, such as "a sales rep changes only its own
//! activities", are checked here on the rows) and parsed input, and runs in one
//! tenant-scoped transaction: read, apply the rules, write, enqueue the events
//! ([`crm_events::publish`]), commit. References are verified before the transaction and
//! names looked up after it (no remote call holds a row lock).
//!
//! The use cases of events ([`crate::consumers`]) run in the consumer's transaction, which
//! also records the event as processed.

pub mod activities;
pub mod attachments;
pub mod emails;
pub mod marketing;
pub mod notes;
pub mod references;
pub mod reminders;
pub mod reports;
pub mod rules;
pub mod scheduler;
pub mod sequences;
pub mod storage;
pub mod tasks;
pub mod templates;
pub mod unsubscribe;
pub mod webhooks;
pub mod tracking;

use axum::http::StatusCode;
use crm_web::pagination::SortDir;
use crm_web::permissions::{Action, Resource, Scope, scope};
use crm_web::{ApiError, AuthUser, CursorCodec, FieldErrors, QueryParams, codes};

use crate::repo::{Cursor, Dir, EmailVisibility};

/// THE rule of email visibility, applied on every path that shows an email's content or
/// address (`GET /emails/{id}`, activities of type `email` in `GET /activities`,
/// `GET /activities/{id}` and their writes, `GET /contacts/{id}/timeline`): the role's
/// `emails: read` scope decides. `all` sees every CRM email; `own` (sales reps) sees the
/// emails it sent or whose activity it owns or created; a role without it sees none. System
/// emails (invitations, password resets) are seen with `system_emails: read` (admins). The
/// repositories turn it into one SQL condition per table (`repo::activity_visible`,
/// `repo::email_visible`); an email outside it is "not found" and absent from lists.
pub fn email_visibility(user: &AuthUser) -> EmailVisibility {
    let emails = scope(user.role, Resource::Emails, Action::Read);
    EmailVisibility {
        all: emails == Scope::All,
        user: (emails == Scope::Own).then_some(user.user_id),
        system: scope(user.role, Resource::SystemEmails, Action::Read) == Scope::All,
    }
}

/// `?sort=` of a list with one order only (`expected`, e.g. `name` or `-occurred_at`): absent
/// or exactly that; anything else is 400 naming `sort` (never silently ignored).
fn single_sort(params: &QueryParams, errors: &mut FieldErrors, expected: &'static str) {
    let (field, dir) = match expected.strip_prefix('-') {
        Some(f) => (f, SortDir::Desc),
        None => (expected, SortDir::Asc),
    };
    let ok = match crm_web::pagination::parse_sort(params.one("sort"), &[field], (field, dir)) {
        Ok((_, d)) => d == dir,
        Err(_) => false,
    };
    if !ok {
        errors.add("sort", format!("must be {expected} (the only order of this list)"));
    }
}

/// The one parser of path ids: anything that is not a positive `i32` cannot exist, so it is
/// simply not found (404 `"{what} not found"`, no hint about valid ids).
pub fn parse_id(raw: &str, what: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::not_found(what))
}

/// `?sort=` from a whitelist (`-` for descending) plus `?cursor=` made for that same sort.
fn sort_and_cursor(
    params: &QueryParams,
    errors: &mut FieldErrors,
    cursors: &CursorCodec,
    allowed: &[&'static str],
    default: (&'static str, SortDir),
) -> Result<(&'static str, Dir, Option<Cursor>), ApiError> {
    let (field, dir) = match crm_web::pagination::parse_sort(params.one("sort"), allowed, default) {
        Ok(sort) => sort,
        Err(_) => {
            errors.add("sort", format!("must be one of: {} (prefix - for descending)", allowed.join(", ")));
            default
        }
    };
    let dir = match dir {
        SortDir::Asc => Dir::Asc,
        SortDir::Desc => Dir::Desc,
    };
    let key = sort_key(field, dir);
    let cursor: Option<Cursor> = crm_web::pagination::parse_cursor(cursors, params.one("cursor"))?;
    if cursor.as_ref().is_some_and(|c| c.sort != key) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, codes::INVALID_CURSOR, "the cursor belongs to another sort"));
    }
    Ok((field, dir, cursor))
}

fn sort_key(field: &str, dir: Dir) -> String {
    match dir {
        Dir::Asc => field.to_owned(),
        Dir::Desc => format!("-{field}"),
    }
}

/// An event that cannot be enqueued, as a database error of the scheduler's work (a payload
/// that does not serialize is a bug, reported as such).
pub(crate) fn publish_error(e: crm_events::PublishError) -> crm_tenant::DbError {
    match e {
        crm_events::PublishError::Db(db) => db,
        crm_events::PublishError::Encode(_) => crm_tenant::DbError::Refused("an event payload did not serialize"),
    }
}

/// "insert returned no row" where a row must come back (no source event to conflict on).
fn no_row() -> ApiError {
    ApiError::internal("insert returned no row")
}

#[cfg(test)]
mod tests {
    use super::parse_id;

    #[test]
    fn ids_that_cannot_exist_are_not_found() {
        assert_eq!(parse_id("42", "activity").unwrap(), 42);
        for raw in ["0", "-1", "abc", "", "2147483648", "1.5", " 1"] {
            let err = parse_id(raw, "activity").unwrap_err();
            assert_eq!(err.status(), axum::http::StatusCode::NOT_FOUND, "{raw:?}");
        }
    }
}
