//! Issue 16 (merge): `contact.merged` / `company.merged` move every reference from the merged
//! ids to the survivor, once (a redelivered event changes nothing more), keeping at most one
//! open inactive-lead follow-up task per contact.

use crm_client_contact::RecordsMerged;
use crm_client_contact::subjects::{COMPANY_MERGED, CONTACT_MERGED};
use crm_events::Envelope;
use crm_testing::wait_until;

use crate::helpers::*;

const SURVIVOR: i32 = 700;
const MERGED: [i32; 2] = [701, 702];
const COMPANY: i32 = 800;
const OLD_COMPANY: i32 = 801;

fn merged(tenant: &crm_tenant::TenantId, subject: &str, survivor: i32, ids: &[i32]) -> Envelope {
    let data = RecordsMerged { id: survivor, survivor_id: survivor, merged_ids: ids.to_vec(), merged_by: ADMIN };
    Envelope::new(subject, tenant, Some(ADMIN.to_string()), data).expect("envelope")
}

#[tokio::test]
async fn merged_contacts_and_companies_move_to_the_survivor_once() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    let client = app.platform.pool.get().await.expect("connection");
    let follow_up = |contact: i32| {
        format!(
            "INSERT INTO tasks (title, type, status, contact_id, assigned_to, custom_fields) VALUES ('follow up', 'follow_up', 'pending', {contact}, {ADMIN}, '{{\"reason\": \"inactive_lead\"}}')"
        )
    };
    for tenant in [&t.id, &other.id] {
        let s = tenant.schema().quoted();
        // Transaction-local: the pooled connection goes back without this tenant's path.
        let mut sql = format!("BEGIN; SET LOCAL search_path = {s};");
        for c in MERGED {
            sql += &format!(
                "INSERT INTO activities (type, subject, contact_id, company_id, owner_id, created_by) VALUES ('call', 'about {c}', {c}, {OLD_COMPANY}, {ADMIN}, {ADMIN});
                 INSERT INTO tasks (title, contact_id, assigned_to) VALUES ('task of {c}', {c}, {ADMIN});
                 INSERT INTO notes (body, author_id, contact_id, company_id) VALUES ('note on {c}', {ADMIN}, {c}, {OLD_COMPANY});
                 {};",
                follow_up(c)
            );
        }
        sql += &format!("{}; COMMIT;", follow_up(SURVIVOR));
        client.batch_execute(&sql).await.expect("rows");
    }

    let event = merged(&t.id, CONTACT_MERGED, SURVIVOR, &MERGED);
    assert!(!app.publish(&event, &event.id).await);
    let on_merged = "contact_id IN (701, 702)";
    wait_until("the merged contacts' rows move", WAIT, || async {
        let left = app.count(&t.id, "activities", on_merged).await + app.count(&t.id, "notes", on_merged).await + app.count(&t.id, "tasks", on_merged).await;
        (left == 0).then_some(())
    })
    .await;
    assert_eq!(app.count(&t.id, "activities", "contact_id = 700").await, 2);
    assert_eq!(app.count(&t.id, "notes", "contact_id = 700").await, 2);
    assert_eq!(app.count(&t.id, "tasks", "contact_id = 700").await, 5);
    // One open inactive-lead follow-up stays (the survivor's); the merged ones' are cancelled.
    let open_follow_ups = "contact_id = 700 AND type = 'follow_up' AND status IN ('pending', 'in_progress')";
    assert_eq!(app.count(&t.id, "tasks", open_follow_ups).await, 1);
    assert_eq!(app.count(&t.id, "tasks", "contact_id = 700 AND status = 'cancelled'").await, 2);

    // Redelivered under another message id (processed once), then a second merge event of the
    // same ids (idempotent: nothing left to move).
    assert!(!app.publish(&event, &format!("redelivery-{}", event.id)).await);
    let again = merged(&t.id, CONTACT_MERGED, SURVIVOR, &MERGED);
    assert!(!app.publish(&again, &again.id).await);
    let company = merged(&t.id, COMPANY_MERGED, COMPANY, &[OLD_COMPANY]);
    assert!(!app.publish(&company, &company.id).await);
    wait_until("the merged company's rows move", WAIT, || async {
        (app.count(&t.id, "activities", "company_id = 801").await == 0 && app.count(&t.id, "notes", "company_id = 801").await == 0).then_some(())
    })
    .await;
    assert_eq!(app.count(&t.id, "activities", "company_id = 800 AND contact_id = 700").await, 2);
    assert_eq!(app.count(&t.id, "tasks", "contact_id = 700").await, 5);
    assert_eq!(app.count(&t.id, "tasks", "status = 'cancelled'").await, 2);

    // The other tenant's rows with the same ids are untouched.
    assert_eq!(app.count(&other.id, "activities", "contact_id IN (701, 702) AND company_id = 801").await, 2);
    assert_eq!(app.count(&other.id, "notes", "contact_id = 700").await, 0);
}
