//! Notes (issue 16): markdown written by a user about a contact, a company and/or a deal.
//! Write, list (filters, keyset pages, names of the author and of what they link), read,
//! patch, delete; events `note.created`, `note.updated` (with `changes`, for the audit log)
//! and `note.deleted`, in the transaction of the write.
//!
//! Permissions are those of activities (a note is the written form of an interaction): every
//! member with `activities: read` reads every note; `activities: write` with scope `own`
//! (sales reps) edits only the notes it wrote, `all` (managers, admins) any; deleting needs
//! `activities: delete` with the same rule; viewers only read. The author is always the
//! caller and never changes.
//!
//! Links are checked against their services before the transaction (422
//! `REFERENCE_NOT_FOUND` naming the field; 503 when a service cannot be asked: a note is
//! refused rather than stored with a link nobody checked, since it has no review flag) and
//! against `gone_references` inside it (a record erased meanwhile).
//! Records gone for good remove their notes through `crate::repo::references`.

use crm_client_communication::subjects::{NOTE_CREATED, NOTE_DELETED, NOTE_UPDATED};
use crm_client_communication::{MAX_NOTE_BODY, NewNote, Note, NotePatch};
use crm_web::pagination::SortDir;
use crm_web::{ApiError, Can, Caller, ETag, FieldErrors, IfMatch, Page, QueryParams, codes, parse_limit, perm};

use super::references::refuse_gone;
use super::{sort_and_cursor, sort_key};
use crate::AppState;
use crate::domain::positive_id;
use crate::enrich::{Names, RefFields, Refs};
use crate::repo::Cursor;
use crate::repo::notes::{self as repo, NOTE_SORTS, NoteFilter, NoteWrite};

/// Checks a note's body and links: the body is trimmed and must keep 1..=[`MAX_NOTE_BODY`]
/// characters (line breaks and tabs allowed, other control characters not); ids must be
/// positive; at least one link (a note is always about something, and erasing that record
/// must find it).
pub fn check_note(errors: &mut FieldErrors, body: &str, contact_id: Option<i32>, company_id: Option<i32>, deal_id: Option<i32>) -> NoteWrite {
    let body = body.trim();
    if body.is_empty() {
        errors.add("body", "required: 1 to 100000 characters of markdown");
    } else {
        crm_web::validate::multiline(errors, "body", body, MAX_NOTE_BODY);
    }
    let write = NoteWrite {
        body: body.to_owned(),
        contact_id: positive_id(errors, "contact_id", contact_id),
        company_id: positive_id(errors, "company_id", company_id),
        deal_id: positive_id(errors, "deal_id", deal_id),
    };
    if write.contact_id.is_none() && write.company_id.is_none() && write.deal_id.is_none() {
        errors.add("contact_id", "a note needs at least one of contact_id, company_id, deal_id");
    }
    write
}

/// The links that are new (all of them on create) must exist in their services.
async fn verify_links(state: &AppState, caller: &Caller, write: &NoteWrite, before: Option<&Note>) -> Result<(), ApiError> {
    let changed = |new: Option<i32>, old: Option<i32>| new.filter(|id| before.is_none() || Some(*id) != old);
    let mut refs = Refs::default();
    refs.contacts.extend(changed(write.contact_id, before.and_then(|b| b.contact_id)));
    refs.companies.extend(changed(write.company_id, before.and_then(|b| b.company_id)));
    refs.deals.extend(changed(write.deal_id, before.and_then(|b| b.deal_id)));
    let fields = RefFields { contact: Some("contact_id"), company: Some("company_id"), deal: Some("deal_id"), user: None };
    if state.clients.verify(&caller.ctx, &refs, &fields).await? {
        return Err(ApiError::unavailable("the linked records could not be checked (contact- or deal-service unavailable): try again"));
    }
    Ok(())
}

fn name(map: &Option<std::collections::HashMap<i32, String>>, id: Option<i32>) -> Option<String> {
    map.as_ref()?.get(&id?).cloned()
}

/// Fills the names of the author and of the linked records (one call per service; `null`
/// where a service could not be reached).
pub async fn enrich(state: &AppState, caller: &Caller, notes: &mut [Note]) {
    if notes.is_empty() {
        return;
    }
    let mut refs = Refs::default();
    for n in notes.iter() {
        refs.contacts.extend(n.contact_id);
        refs.companies.extend(n.company_id);
        refs.deals.extend(n.deal_id);
        refs.users.insert(n.author_id);
    }
    let names: Names = state.clients.lookup(&caller.ctx, &refs).await;
    for n in notes {
        n.author_name = name(&names.users, Some(n.author_id));
        n.contact_name = name(&names.contacts, n.contact_id);
        n.company_name = name(&names.companies, n.company_id);
        n.deal_title = name(&names.deals, n.deal_id);
    }
}

pub async fn create(state: &AppState, can: &Can<perm::ActivitiesWrite>, input: NewNote) -> Result<Note, ApiError> {
    let mut errors = FieldErrors::new();
    let write = check_note(&mut errors, &input.body, input.contact_id, input.company_id, input.deal_id);
    errors.into_result()?;
    verify_links(state, can, &write, None).await?;

    let tx = state.db.tenant(&can.tenant_id).await?;
    refuse_gone(&tx, write.contact_id, write.company_id, write.deal_id).await?;
    let mut note = repo::insert(&tx, &write, can.user_id).await?;
    crm_events::publish(&tx, Some(can.user_id), NOTE_CREATED, note.event()).await?;
    tx.commit().await?;
    enrich(state, can, std::slice::from_mut(&mut note)).await;
    Ok(note)
}

pub async fn list(state: &AppState, can: &Can<perm::ActivitiesRead>, params: &QueryParams) -> Result<Page<Note>, ApiError> {
    let mut errors = FieldErrors::new();
    let filter = NoteFilter {
        contact_id: params.id(&mut errors, "contact_id"),
        company_id: params.id(&mut errors, "company_id"),
        deal_id: params.id(&mut errors, "deal_id"),
        author_id: params.id(&mut errors, "author_id"),
    };
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|e| {
        errors.add("limit", e.details().and_then(|d| d["fields"]["limit"].as_str()).unwrap_or("invalid").to_owned());
        0
    });
    let (sort, dir, after) = sort_and_cursor(params, &mut errors, &state.cursors, NOTE_SORTS, ("created_at", SortDir::Desc))?;
    errors.into_result()?;

    let tx = state.db.tenant(&can.tenant_id).await?;
    let rows = repo::list(&tx, &filter, sort, dir, after.as_ref(), limit).await?;
    let total = if params.count() { Some(repo::count(&tx, &filter).await?) } else { None };
    tx.commit().await?;
    let key = sort_key(sort, dir);
    let page = Page::from_overfetch(rows, limit, total, |last| state.cursors.encode(&Cursor { sort: key, at: last.at, id: last.row.id }));
    let mut data: Vec<Note> = page.data.into_iter().map(|k| k.row).collect();
    enrich(state, can, &mut data).await;
    Ok(Page { data, pagination: page.pagination })
}

pub async fn get(state: &AppState, can: &Can<perm::ActivitiesRead>, id: i32) -> Result<Note, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let mut note = repo::by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("note"))?;
    tx.commit().await?;
    enrich(state, can, std::slice::from_mut(&mut note)).await;
    Ok(note)
}

/// `PATCH /notes/{id}`: only the fields present change. A patch that changes nothing writes
/// nothing and publishes nothing (the ETag stays).
pub async fn patch(state: &AppState, can: &Can<perm::ActivitiesWrite>, id: i32, if_match: &IfMatch, patch: NotePatch) -> Result<Note, ApiError> {
    // Read first (without a lock) to check links that change against their services outside
    // the transaction; the row is then locked and the precondition checked on it.
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("note"))?;
    tx.commit().await?;
    if_match.check(&ETag::of(current.updated_at))?;
    if !can.reaches([Some(current.author_id)]) {
        return Err(ApiError::forbidden("a sales rep may only change the notes they wrote"));
    }
    let mut errors = FieldErrors::new();
    let body = patch.body.as_deref().unwrap_or(&current.body);
    let write = check_note(
        &mut errors,
        body,
        patch.contact_id.unwrap_or(current.contact_id),
        patch.company_id.unwrap_or(current.company_id),
        patch.deal_id.unwrap_or(current.deal_id),
    );
    errors.into_result()?;
    verify_links(state, can, &write, Some(&current)).await?;

    let tx = state.db.tenant(&can.tenant_id).await?;
    let locked = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("note"))?;
    // Changed between the two reads: the links checked may no longer be the ones to write.
    if locked.updated_at != current.updated_at {
        if_match.check(&ETag::of(locked.updated_at))?;
        return Err(ApiError::conflict(codes::CONFLICT, "the note changed while it was being saved: read it again"));
    }
    let unchanged = NoteWrite { body: locked.body.clone(), contact_id: locked.contact_id, company_id: locked.company_id, deal_id: locked.deal_id };
    if write == unchanged {
        tx.commit().await?;
        let mut note = locked;
        enrich(state, can, std::slice::from_mut(&mut note)).await;
        return Ok(note);
    }
    refuse_gone(&tx, write.contact_id, write.company_id, write.deal_id).await?;
    let mut note = repo::update(&tx, id, &write).await?;
    crm_events::publish(&tx, Some(can.user_id), NOTE_UPDATED, updated_payload(&locked, &note)?).await?;
    tx.commit().await?;
    enrich(state, can, std::slice::from_mut(&mut note)).await;
    Ok(note)
}

/// `note.updated`: the note after the change plus `changes` (`{field: {old, new}}`) for the
/// audit log. The body in an event is cut ([`crm_client_communication::NOTE_EVENT_BODY_CHARS`]),
/// so a change beyond the cut is still reported as a change of `body` (with the cut values).
fn updated_payload(old: &Note, new: &Note) -> Result<serde_json::Value, ApiError> {
    let (before, after) = (old.event(), new.event());
    let mut data = serde_json::to_value(&after).map_err(ApiError::internal)?;
    let mut changes = crm_events::changes(&before, &after, &["updated_at", "created_at", "body_length", "body_truncated"]).map_err(ApiError::internal)?;
    if old.body != new.body
        && let Some(map) = changes.as_object_mut()
    {
        map.entry("body").or_insert_with(|| serde_json::json!({"old": before.body, "new": after.body}));
    }
    data["changes"] = changes;
    Ok(data)
}

pub async fn delete(state: &AppState, can: &Can<perm::ActivitiesDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("note"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    if !can.reaches([Some(current.author_id)]) {
        return Err(ApiError::forbidden("a sales rep may only delete the notes they wrote"));
    }
    repo::delete(&tx, id).await?;
    crm_events::publish(&tx, Some(can.user_id), NOTE_DELETED, current.event()).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(body: &str, c: Option<i32>, co: Option<i32>, d: Option<i32>) -> Vec<String> {
        let mut errors = FieldErrors::new();
        check_note(&mut errors, body, c, co, d);
        match errors.into_result() {
            Ok(()) => vec![],
            Err(e) => {
                let mut fields: Vec<String> = e.details().and_then(|d| d["fields"].as_object().map(|m| m.keys().cloned().collect())).unwrap_or_default();
                fields.sort();
                fields
            }
        }
    }

    #[test]
    fn body_and_links_are_checked() {
        assert!(errors_of("# Call\n\n- went *well*\t", Some(1), None, None).is_empty());
        assert_eq!(errors_of("  \n ", Some(1), None, None), ["body"]);
        assert_eq!(errors_of(&"x".repeat(MAX_NOTE_BODY + 1), None, None, Some(2)), ["body"]);
        assert!(errors_of(&"é".repeat(MAX_NOTE_BODY), None, None, Some(2)).is_empty(), "characters, not bytes");
        assert_eq!(errors_of("a\u{0}b", None, Some(3), None), ["body"]);
        assert_eq!(errors_of("ok", None, None, None), ["contact_id"]);
        assert_eq!(errors_of("ok", Some(0), Some(-1), None), ["company_id", "contact_id"]);
    }

    #[test]
    fn a_body_change_beyond_the_event_cut_is_still_a_change() {
        let now = chrono::Utc::now();
        let long = "a".repeat(crm_client_communication::NOTE_EVENT_BODY_CHARS + 10);
        let old = Note {
            id: 1,
            body: long.clone() + "x",
            author_id: 2,
            author_name: None,
            contact_id: Some(3),
            contact_name: None,
            company_id: None,
            company_name: None,
            deal_id: None,
            deal_title: None,
            created_at: now,
            updated_at: now,
        };
        let new = Note { body: long + "y", deal_id: Some(4), updated_at: now + chrono::Duration::seconds(1), ..old.clone() };
        let data = updated_payload(&old, &new).unwrap();
        let changes = data["changes"].as_object().unwrap();
        let mut keys: Vec<&String> = changes.keys().collect();
        keys.sort();
        assert_eq!(keys, ["body", "deal_id"]);
        assert_eq!(changes["deal_id"], serde_json::json!({"old": null, "new": 4}));
        assert_eq!(data["id"], 1);
    }
}
