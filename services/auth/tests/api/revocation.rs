//! Requirement 2.4: a role change or deactivation takes effect on the next request, in every
//! service, without a call to auth-service per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_client_auth::subjects;
use crm_testing::TestPlatform;
use crm_web::{RevocationConfig, RevocationGuard};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, until_status};

/// tenant-service served by a platform of its own (its own revocation guard, poller and
/// subscription): "another service" that never talks to auth-service.
pub async fn other_service() -> (TestPlatform, String) {
    let platform = TestPlatform::start().await;
    let state = crate::helpers::tenant_state(&platform);
    let url = platform.serve("tenant-service", tenant_service::router(state)).await;
    (platform, url)
}

#[tokio::test]
async fn a_demoted_user_is_refused_within_a_second_in_every_service() {
    let app = spawn_app().await;
    let (_other, other_url) = other_service().await;
    let tenant = app.tenant().await;
    let manager = app.user(&tenant, "manager").await;
    let invitations = format!("{other_url}/api/v1/tenants/{}/invitations", tenant.id);
    let list = || async { app.http.get(&invitations).bearer_auth(manager.access()).send().await.unwrap().status() };
    assert_eq!(list().await, StatusCode::OK, "a manager reads invitations");
    assert_eq!(app.get("/api/v1/auth/me", manager.access()).await.0, StatusCode::OK);

    let (status, _) = app.patch(&format!("/api/v1/users/{}", manager.id()), tenant.admin.access(), json!({"role": "viewer"})).await;
    assert_eq!(status, StatusCode::OK);
    let changed = Instant::now();
    // auth-service itself, on the very next request (same instance, same guard: the poller or
    // the event may not even have run yet, so allow the same second).
    let (status, body) = app.get("/api/v1/auth/me", manager.access()).await;
    if status != StatusCode::UNAUTHORIZED {
        until_status(&app, "/api/v1/auth/me", manager.access(), StatusCode::UNAUTHORIZED, Duration::from_secs(1)).await;
    } else {
        assert_eq!(body["code"], "TOKEN_REVOKED");
    }
    crm_testing::wait_until("the other service to refuse the old token", Duration::from_secs(1), || async {
        (list().await == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    let elapsed = changed.elapsed();
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    let (_, body) = app.send(app.http.get(&invitations).bearer_auth(manager.access())).await;
    assert_eq!(body["code"], "TOKEN_REVOKED");

    // A new login carries the new role: a viewer may not read invitations (403, not 401).
    let (status, login) = app.login(&tenant, &manager.email, &manager.password).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(login["user"]["role"], "viewer");
    let fresh = login["access_token"].as_str().unwrap();
    assert_eq!(app.http.get(&invitations).bearer_auth(fresh).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    // So does a refresh of the old session (the role is read again).
    let (status, refreshed) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": manager.refresh()})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(refreshed["user"]["role"], "viewer");
    assert_eq!(app.get("/api/v1/auth/me", refreshed["access_token"].as_str().unwrap()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_deactivated_user_is_refused_everywhere_and_cannot_come_back_by_refresh() {
    let app = spawn_app().await;
    let (_other, other_url) = other_service().await;
    let tenant = app.tenant().await;
    let rep = app.user(&tenant, "sales_rep").await;
    let tenant_path = format!("{other_url}/api/v1/tenants/{}", tenant.id);
    assert_eq!(app.http.get(&tenant_path).bearer_auth(rep.access()).send().await.unwrap().status(), StatusCode::OK);

    let mut deactivated = app.platform.events(subjects::USER_DEACTIVATED).await;
    let (status, user) = app.patch(&format!("/api/v1/users/{}", rep.id()), tenant.admin.access(), json!({"status": "inactive"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["status"], "inactive");
    let event = deactivated.wait_for(&tenant.id, subjects::USER_DEACTIVATED, Duration::from_secs(10)).await;
    assert_eq!(event.data["id"], rep.id());

    until_status(&app, "/api/v1/auth/me", rep.access(), StatusCode::UNAUTHORIZED, Duration::from_secs(1)).await;
    crm_testing::wait_until("tenant-service to refuse the token", Duration::from_secs(1), || async {
        (app.http.get(&tenant_path).bearer_auth(rep.access()).send().await.unwrap().status() == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    assert_eq!(app.post("/api/v1/auth/refresh", None, json!({"refresh_token": rep.refresh()})).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&tenant, &rep.email, &rep.password).await.0, StatusCode::UNAUTHORIZED);

    // Reactivated: a new login works, the old tokens stay dead.
    let (status, _) = app.patch(&format!("/api/v1/users/{}", rep.id()), tenant.admin.access(), json!({"status": "active"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, login) = app.login(&tenant, &rep.email, &rep.password).await;
    assert_eq!(status, StatusCode::OK);
    let fresh = login["access_token"].as_str().unwrap().to_owned();
    until_status(&app, "/api/v1/auth/me", &fresh, StatusCode::OK, Duration::from_secs(1)).await;
    assert_eq!(app.get("/api/v1/auth/me", rep.access()).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_poller_alone_is_enough_when_events_do_not_arrive() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let viewer = app.user(&tenant, "viewer").await;
    // A guard with no NATS subscription at all: only its 500 ms poll of the table.
    let guard = Arc::new(RevocationGuard::new(RevocationConfig::default()));
    guard.sync(&app.platform.db).await.unwrap();
    let poller = guard.spawn(app.platform.db.clone());
    let claims = app.platform.keys.verify_access(viewer.access()).unwrap();
    assert!(guard.check_claims(&tenant.id, viewer.id(), &claims).is_ok());

    let (status, _) = app.patch(&format!("/api/v1/users/{}", viewer.id()), tenant.admin.access(), json!({"role": "sales_rep"})).await;
    assert_eq!(status, StatusCode::OK);
    let changed = Instant::now();
    crm_testing::wait_until("the poller to see the change", Duration::from_secs(1), || async {
        guard.check_claims(&tenant.id, viewer.id(), &claims).is_err().then_some(())
    })
    .await;
    assert!(changed.elapsed() < Duration::from_secs(1));
    poller.abort();
}
