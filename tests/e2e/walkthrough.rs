//! README "Using the platform": signup -> register -> login -> company, contact -> deal ->
//! closed won -> the activity and follow-up task appear, over the combined port, with the
//! names filled in by the real services.

use reqwest::StatusCode;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walkthrough_from_signup_to_the_closed_won_activity() {
    let (crm, _db, _nats) = Crm::start().await;
    let api = crm.api();

    let admin = signup_admin(&api, "Acme Inc", "acme").await;
    assert_eq!(admin.role, "admin");
    let me = api.get("/api/v1/auth/me", &admin.token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["email"], admin.email);
    let lookup = api.call(reqwest::Method::GET, "/api/v1/tenants/by-subdomain/acme", None, None).await;
    assert_eq!(lookup.status, StatusCode::OK, "{}", lookup.body);
    assert_eq!(lookup.body["id"], admin.tenant_id.as_str());

    let p = close_a_deal(&api, &admin, "Initech").await;
    assert_eq!(p.deal["company_name"], "Initech Corp", "{}", p.deal);
    assert_eq!(p.deal["primary_contact_name"], "Peter Initech", "{}", p.deal);
    assert!(p.deal["actual_close_date"].is_string(), "closing sets the close date: {}", p.deal);

    assert_eq!(p.activity["subject"], "Deal closed won: Initech deal", "{}", p.activity);
    assert_eq!(p.activity["deal_id"], p.deal["id"]);
    assert_eq!(p.activity["contact_id"], p.contact["id"]);
    assert_eq!(p.activity["company_id"], p.company["id"]);
    assert_eq!(p.activity["owner_id"], admin.user_id);
    assert_eq!(p.activity["deal_title"], "Initech deal");
    assert_eq!(p.activity["contact_name"], "Peter Initech");
    assert_eq!(p.activity["company_name"], "Initech Corp");
    assert_eq!(p.task["title"], "Follow up on won deal: Initech deal", "{}", p.task);

    // Every service reads the same data on its own port too.
    let deal_port = crm.ports()[3];
    let on_deal_port = crm.api_at(deal_port).get(&format!("/api/v1/deals/{}", p.deal["id"]), &admin.token).await;
    assert_eq!(on_deal_port.status, StatusCode::OK);
    assert_eq!(on_deal_port.body["stage"], "closed_won");
    let comm_port = crm.ports()[4];
    let activity = crm.api_at(comm_port).get(&format!("/api/v1/activities/{}", p.activity["id"]), &admin.token).await;
    assert_eq!(activity.status, StatusCode::OK, "{}", activity.body);

    // Once only: the activity and the task exist exactly once for the deal.
    let activities = all_pages(&api, &format!("/api/v1/activities?deal_id={}&limit=100", p.deal["id"]), &admin.token).await;
    assert_eq!(activities.len(), 1, "{activities:?}");
    assert_eq!(tasks_of(&api, &admin.token, &p.deal["id"]).await.len(), 1);
}
