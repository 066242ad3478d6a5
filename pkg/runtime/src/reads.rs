//! The HTTP side of the read replica's rule (`crm_tenant::read`): every API request of a
//! process with `DATABASE_READ_URL` set runs inside a [`crm_tenant::read::RequestReads`]
//! scope that knows its user (from the verified access token) and the WAL position its client
//! last saw (`Crm-Lsn` header, else the `crm_lsn` cookie); a request that committed a write
//! answers with that write's position in the `Crm-Lsn` header and cookie.
//!
//! Without a replica the middleware is not installed: no header, no cookie, no cost.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use crm_database::Lsn;
use crm_tenant::TenantDb;
use crm_tenant::read::RECENT_WRITE_TTL;
use crm_web::JwtKeys;
use crm_web::auth::bearer_token;

/// `Crm-Lsn`: on a response, the WAL position of the request's newest write (`16/B374D848`);
/// on a request, the newest position the client has seen, so that its lag-tolerant reads
/// are at least that fresh on any process and any replica.
pub const CRM_LSN: HeaderName = HeaderName::from_static("crm-lsn");

/// The cookie carrying the same position, for browsers (sent back by themselves).
pub const LSN_COOKIE: &str = "crm_lsn";

/// State of [`track_reads`]: the database (with its replica) and the keys that verify tokens
/// (an unverified token must not name the user whose recent writes a read looks up).
#[derive(Clone)]
pub struct ReadTracking {
    pub db: TenantDb,
    pub keys: Arc<JwtKeys>,
}

/// The middleware (`axum::middleware::from_fn_with_state`), installed by
/// `Platform::finish` only when a read replica is configured.
pub async fn track_reads(State(tracking): State<ReadTracking>, req: Request, next: Next) -> Response {
    let user = bearer_token(req.headers())
        .ok()
        .flatten()
        .and_then(|token| tracking.keys.verify_access(token).ok())
        .and_then(|claims| Some((claims.tenant_id, claims.sub.parse::<i32>().ok()?)));
    let after = client_position(req.headers());
    let Some(reads) = tracking.db.request_reads(user, after) else { return next.run(req).await };
    let mut response = reads.clone().scope(next.run(req)).await;
    if let Some(lsn) = reads.written() {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&lsn.to_string()) {
            headers.insert(CRM_LSN, value);
        }
        let cookie = format!("{LSN_COOKIE}={lsn}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax", RECENT_WRITE_TTL.as_secs());
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(SET_COOKIE, value);
        }
    }
    response
}

/// The position the client sent: the `Crm-Lsn` header, else the `crm_lsn` cookie; text that
/// is not a position is ignored (it only ever makes reads fresher, never fails a request).
fn client_position(headers: &HeaderMap) -> Option<Lsn> {
    let from_header = headers.get(CRM_LSN).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    from_header.or_else(|| {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == LSN_COOKIE)
            .and_then(|(_, value)| value.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_position_comes_from_the_header_else_the_cookie() {
        let mut headers = HeaderMap::new();
        assert_eq!(client_position(&headers), None);
        headers.insert(COOKIE, HeaderValue::from_static("theme=dark; crm_lsn=0/8000060"));
        assert_eq!(client_position(&headers), Some(Lsn(0x0800_0060)));
        headers.insert(CRM_LSN, HeaderValue::from_static("1/0"));
        assert_eq!(client_position(&headers), Some(Lsn(1 << 32)));
        headers.insert(CRM_LSN, HeaderValue::from_static("junk"));
        assert_eq!(client_position(&headers), Some(Lsn(0x0800_0060)), "a bad header is ignored");
    }
}
