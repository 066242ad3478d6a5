//! All SQL of tenant-service, one module per table. The tables live in schema `platform`:
//! every function takes the caller's [`crm_tenant::PlatformTx`] (so the caller owns
//! atomicity: a signup is row + invitation + events, all or nothing) and returns
//! [`DbError`]. Schema DDL is `PlatformTx::{provision_schema, drop_schema}` (crm-tenant).

pub mod archive;
mod exports;
mod invitations;
mod settings;
mod spares;
mod tenants;


pub use invitations::{
    InvitationCursor, InvitationInsert, accept_invitation, count_invitations, has_pending_invitation,
    insert_invitation, invitation_by_id, invitation_by_token, list_invitations, revoke_invitation,
};
pub use exports::{
    ExportRow, claim_export, delete_expired_exports, export_by_id, fail_export, finish_export, insert_export, unfinished_export,
};
pub use settings::{save_settings, schedule_inactive_leads, settings};
pub use spares::{count_spares, insert_spare, take_spare};
pub use tenants::{delete_tenant, insert_tenant, tenant_by_id, tenant_by_subdomain, tenant_for_update, update_tenant};
pub use crm_tenant::throttle::count_hit;

use crm_tenant::DbError;

pub type Result<T> = std::result::Result<T, DbError>;
