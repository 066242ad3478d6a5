//! Issue 15, the seed flow end to end (seed 004: deal closure -> "Trigger follow-up email
//! sequence"): `crm demo` seeds the rule "Deal won -> follow-up sequence" (on); a demo deal
//! closed as won -> the activity, the follow-up task, and the first email of the
//! "Customer follow-up" sequence in the mail sink, with the one-click unsubscribe.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_won_deal_starts_the_follow_up_sequence_seeded_by_crm_demo() {
    let sink = crm_testing::temp_dir("crm-e2e-mail");
    let db = crm_testing::TestDatabase::create("crm_e2e").await;
    let nats = crm_testing::NatsServer::start().await;
    let env = vec![
        ("EMAIL_SINK_DIR".to_owned(), sink.display().to_string()),
        ("AUTOMATION_POLL_MS".to_owned(), "100".to_owned()),
        ("AUTOMATION_SWEEP_SECONDS".to_owned(), "1".to_owned()),
    ];
    let crm = Crm::start_with(Backends { database_url: db.url.clone(), nats_url: nats.url(), env }).await;
    let api = crm.api();

    let demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_crm"))
        .args(["demo", "--url", &crm.url()])
        .env("PLATFORM_ADMIN_TOKEN", crm_testing::TEST_OPERATOR_TOKEN)
        .output()
        .await
        .expect("run crm demo");
    assert!(demo.status.success(), "crm demo: {}{}", String::from_utf8_lossy(&demo.stdout), String::from_utf8_lossy(&demo.stderr));

    let login = login(&api, "demo", "admin@demo.example", "demo-password-2026").await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let token = login.body["access_token"].as_str().expect("token").to_owned();
    let rules = api.get("/api/v1/automation/rules", &token).await;
    let rule = rules.body["data"].as_array().and_then(|r| r.iter().find(|r| r["name"] == "Deal won -> follow-up sequence").cloned()).expect("the seeded rule");
    assert_eq!((rule["enabled"].as_bool(), rule["trigger"]["event"].as_str()), (Some(true), Some("deal.closed_won")), "{rule}");

    // A demo deal still open, closed as won.
    let deals = all_pages(&api, "/api/v1/deals?limit=100", &token).await;
    let deal = deals.iter().find(|d| d["stage"] == "negotiation").expect("a deal in negotiation").clone();
    let closed = api.patch(&format!("/api/v1/deals/{}", deal["id"]), &token, json!({"stage": "closed_won"})).await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    // The demo logged a call on the deal too: wait for the won note among its activities.
    let path = format!("/api/v1/activities?deal_id={}", deal["id"]);
    let activity = crm_testing::wait_until("the deal-won activity", WAIT, || async {
        let r = api.get(&path, &token).await;
        r.body["data"].as_array().and_then(|a| a.iter().find(|a| a["subject"].as_str().is_some_and(|s| s.starts_with("Deal closed won"))).cloned())
    })
    .await;
    assert_eq!(activity["outcome"], "won", "{activity}");
    let task = wait_task(&api, &token, &deal["id"]).await;
    assert_eq!(task["type"], "follow_up", "{task}");

    // The contact is enrolled by the rule and the welcome email is in the sink.
    let contact = api.get(&format!("/api/v1/contacts/{}", deal["primary_contact_id"]), &token).await;
    let address = contact.body["email"].as_str().expect("contact email").to_owned();
    let mail = wait_until_mail(&sink, &address, "Welcome aboard").await;
    assert!(mail.contains("List-Unsubscribe: <"), "{mail}");
    assert!(mail.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{mail}");

    let runs = api.get(&format!("/api/v1/automation/rules/{}/runs", rule["id"]), &token).await;
    let run = runs.body["data"].as_array().and_then(|r| r.iter().find(|r| r["event"]["data"]["id"] == deal["id"]).cloned()).expect("the rule's run");
    assert_eq!(run["status"], "succeeded", "{run}");
    let sequences = api.get("/api/v1/sequences", &token).await;
    let sequence = sequences.body["data"][0]["id"].clone();
    let enrollments = api.get(&format!("/api/v1/sequences/{sequence}/enrollments"), &token).await;
    let enrollment: Value = enrollments.body["data"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["contact_id"] == deal["primary_contact_id"] && e["rule_id"] == rule["id"]).cloned())
        .expect("the enrollment");
    assert_eq!(enrollment["steps"][0]["status"], "sent", "{enrollment}");
    assert_eq!(enrollment["steps"][1]["status"], "scheduled", "{enrollment}");
    drop(crm);
    let _ = std::fs::remove_dir_all(&sink);
}

/// Waits for an `.eml` in the sink to `to` containing `needle` (quoted-printable undone).
async fn wait_until_mail(dir: &std::path::Path, to: &str, needle: &str) -> String {
    crm_testing::wait_until(&format!("an email to {to} containing {needle:?} in {}", dir.display()), WAIT, || async {
        let entries = std::fs::read_dir(dir).ok()?;
        entries.filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "eml")).find_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            let joined = text.replace("=\r\n", "").replace("=\n", "");
            (joined.contains(&format!("To: {to}")) && joined.contains(needle)).then_some(joined)
        })
    })
    .await
}
