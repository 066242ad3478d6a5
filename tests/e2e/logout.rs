//! Issue 12 item 19: after `POST /auth/logout`, the access token used for it (and its refresh
//! token) is refused by every service, each on its own port and the combined one, within
//! the same bound as a role change; another session of the same user keeps working.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::*;

/// The same bound as role changes (roles.rs): the guards poll every 500 ms and are woken by
/// `user.logged_out`.
const REVOCATION_WAIT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_access_token_in_every_service() {
    let (crm, _db, _nats) = Crm::start().await;
    let api = crm.api();
    let admin = signup_admin(&api, "Logout Inc", "logout").await;
    let rep = invite_user(&api, &admin, "rep@logout.example", "sales_rep").await;
    // Two sessions of the rep: one is signed out, the other must survive.
    let first = login(&api, &rep.subdomain, &rep.email, PASSWORD).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let access = first.body["access_token"].as_str().unwrap().to_owned();
    let refresh = first.body["refresh_token"].as_str().unwrap().to_owned();
    let other = rep.token.clone();
    for (service, port, path) in crm.every_port() {
        let path = path.replace("{tenant}", &rep.tenant_id);
        let r = crm.api_at(port).get(&path, &access).await;
        assert_eq!(r.status, StatusCode::OK, "{service} {path} before logout: {}", r.body);
    }

    let r = api.post("/api/v1/auth/logout", Some(&access), json!({"refresh_token": refresh})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let done = Instant::now();
    let mut slowest = Duration::ZERO;
    for (service, port, path) in crm.every_port() {
        let path = path.replace("{tenant}", &rep.tenant_id);
        let at = crm.api_at(port);
        let deadline = Instant::now() + REVOCATION_WAIT;
        loop {
            let r = at.call(Method::GET, &path, Some(&access), None).await;
            if r.status == StatusCode::UNAUTHORIZED {
                assert_eq!(r.code(), "TOKEN_REVOKED", "{service}: {}", r.body);
                slowest = slowest.max(done.elapsed());
                break;
            }
            assert_eq!(r.status, StatusCode::OK, "{service} {path}: {}", r.body);
            assert!(Instant::now() < deadline, "{service} (port {port}) still accepts the signed-out token after {REVOCATION_WAIT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The other session of the same user is untouched.
        let r = at.get(&path, &other).await;
        assert_eq!(r.status, StatusCode::OK, "{service} {path} with the other session: {}", r.body);
    }
    assert!(slowest < REVOCATION_WAIT, "{slowest:?}");
    // Writes too, and the refresh token.
    let r = api.post("/api/v1/contacts", Some(&access), json!({"first_name": "After", "last_name": "Logout"})).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "TOKEN_REVOKED"), "{}", r.body);
    let r = api.post("/api/v1/auth/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}
