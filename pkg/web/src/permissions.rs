#![doc = include_str!("../PERMISSIONS.md")]

use std::fmt;

use crate::auth::{AuthUser, Role};
use crate::error::ApiError;

/// What is being accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Tenant,
    Invitations,
    Users,
    Companies,
    Contacts,
    Deals,
    PipelineStages,
    Activities,
    Tasks,
    EmailTemplates,
    Emails,
    /// Emails the platform sends to users (invitations, password resets): admins only.
    SystemEmails,
    Reports,
    /// Outgoing webhooks for integrators (their URLs and signing secrets): admins only.
    Webhooks,
    /// Automation rules and email sequences (issue 15): admins and managers manage them,
    /// every member reads them. Enrolling a contact in a sequence is `emails: write`.
    Automation,
    /// The tenant's audit log (history of every change, issue 16): admins only. It is
    /// written by auth-service's event consumer, never through the API.
    Audit,
}

impl Resource {
    pub const ALL: [Resource; 16] = [
        Self::Tenant,
        Self::Invitations,
        Self::Users,
        Self::Companies,
        Self::Contacts,
        Self::Deals,
        Self::PipelineStages,
        Self::Activities,
        Self::Tasks,
        Self::EmailTemplates,
        Self::Emails,
        Self::SystemEmails,
        Self::Reports,
        Self::Webhooks,
        Self::Automation,
        Self::Audit,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Invitations => "invitations",
            Self::Users => "users",
            Self::Companies => "companies",
            Self::Contacts => "contacts",
            Self::Deals => "deals",
            Self::PipelineStages => "pipeline_stages",
            Self::Activities => "activities",
            Self::Tasks => "tasks",
            Self::EmailTemplates => "email_templates",
            Self::Emails => "emails",
            Self::SystemEmails => "system_emails",
            Self::Reports => "reports",
            Self::Webhooks => "webhooks",
            Self::Automation => "automation",
            Self::Audit => "audit",
        }
    }

    /// The tenant's business data, as opposed to its configuration and membership.
    fn is_crm_data(self) -> bool {
        matches!(
            self,
            Self::Companies
                | Self::Contacts
                | Self::Deals
                | Self::Activities
                | Self::Tasks
                | Self::EmailTemplates
                | Self::Emails
                | Self::Reports
                | Self::Automation
        )
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    /// Create and update.
    Write,
    Delete,
}

impl Action {
    pub const ALL: [Action; 3] = [Self::Read, Self::Write, Self::Delete];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which rows an allowed action reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    All,
    /// Rows whose owner (`owner_id`, `assigned_to` or `created_by`) is the user.
    Own,
    None,
}

impl Scope {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Own => "own",
            Self::None => "none",
        }
    }
}

/// The matrix itself (see the table above).
pub fn scope(role: Role, resource: Resource, action: Action) -> Scope {
    use Action::{Delete, Read, Write};
    use Resource::*;
    match role {
        Role::Admin => Scope::All,
        Role::Manager => match (resource, action) {
            (r, _) if r.is_crm_data() => Scope::All,
            (Tenant | Users | PipelineStages, Read) | (Invitations, Read | Write) => Scope::All,
            _ => Scope::None,
        },
        Role::SalesRep => match (resource, action) {
            (Emails | Reports, Read) | (Contacts | Deals | Activities | Tasks, Write | Delete) | (Emails, Write) => {
                Scope::Own
            }
            (_, Read) if !matches!(resource, Invitations | SystemEmails | Webhooks | Audit) => Scope::All,
            (Companies, Write) => Scope::All,
            _ => Scope::None,
        },
        Role::Viewer => match (resource, action) {
            (r, Read) if r.is_crm_data() || matches!(r, Tenant | Users | PipelineStages) => Scope::All,
            _ => Scope::None,
        },
        Role::Service => match (resource, action) {
            (Tenant | Users | Companies | Contacts | Deals, Read) | (Invitations, Write) => Scope::All,
            _ => Scope::None,
        },
    }
}

/// Everything a role may do, as `"resource:action:scope"` strings (`/auth/me`).
pub fn permissions_for(role: Role) -> Vec<String> {
    Resource::ALL
        .into_iter()
        .flat_map(|r| Action::ALL.into_iter().map(move |a| (r, a)))
        .filter_map(|(r, a)| match scope(role, r, a) {
            Scope::None => None,
            s => Some(format!("{r}:{a}:{}", s.as_str())),
        })
        .collect()
}

impl AuthUser {
    /// The scope the user's role has for `action` on `resource`; 403 `FORBIDDEN` when none.
    /// With [`Scope::Own`], check each row with [`AuthUser::can_touch`] (or filter the query
    /// by owner).
    pub fn require(&self, resource: Resource, action: Action) -> Result<Scope, ApiError> {
        match scope(self.role, resource, action) {
            Scope::None => {
                tracing::info!(security_event = "forbidden", role = %self.role, %resource, %action, "permission denied");
                Err(ApiError::forbidden(format!("role {} may not {action} {resource}", self.role)))
            }
            s => Ok(s),
        }
    }

    /// Whether a row owned by `owner_id` is within `scope` for this user.
    pub fn can_touch(&self, scope: Scope, owner_id: Option<i32>) -> bool {
        self.can_touch_any(scope, [owner_id])
    }

    /// Same, for rows with several owner columns (a task's `assigned_to` and `created_by`).
    pub fn can_touch_any(&self, scope: Scope, owners: impl IntoIterator<Item = Option<i32>>) -> bool {
        match scope {
            Scope::All => true,
            Scope::Own => owners.into_iter().any(|o| o == Some(self.user_id)),
            Scope::None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;
    use crate::auth::{Claims, TokenType};

    /// The documented table, parsed: `(resource, action) -> [scope per role]`.
    fn documented() -> Vec<(String, String, Vec<String>)> {
        include_str!("../PERMISSIONS.md")
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| resource"))
            .map(|l| {
                let cells: Vec<String> = l.trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect();
                (cells[0].clone(), cells[1].clone(), cells[2..].to_vec())
            })
            .collect()
    }

    #[test]
    fn code_matches_the_documented_table_cell_by_cell() {
        let table = documented();
        assert_eq!(table.len(), Resource::ALL.len() * Action::ALL.len(), "one row per resource and action");
        let mut seen = HashSet::new();
        for (resource, action, cells) in &table {
            let r = *Resource::ALL.iter().find(|r| r.as_str() == resource).unwrap();
            let a = *Action::ALL.iter().find(|a| a.as_str() == action).unwrap();
            assert!(seen.insert((r, a)), "duplicate row {resource} {action}");
            assert_eq!(cells.len(), Role::ALL.len());
            for (role, cell) in Role::ALL.into_iter().zip(cells) {
                let expected = match cell.as_str() {
                    "all" => Scope::All,
                    "own" => Scope::Own,
                    "-" => Scope::None,
                    other => panic!("bad cell {other}"),
                };
                assert_eq!(scope(role, r, a), expected, "{role} {action} {resource}");
            }
        }
    }

    #[test]
    fn spot_checks_from_the_requirements() {
        use Action::*;
        use Resource::*;
        let cases = [
            (Role::Admin, Tenant, Delete, Scope::All),
            (Role::Manager, Deals, Delete, Scope::All),
            (Role::Manager, PipelineStages, Write, Scope::None),
            (Role::Manager, Users, Write, Scope::None),
            (Role::Manager, Invitations, Write, Scope::All),
            (Role::SalesRep, Contacts, Write, Scope::Own),
            (Role::SalesRep, Companies, Write, Scope::All),
            (Role::SalesRep, Companies, Delete, Scope::None),
            (Role::SalesRep, Emails, Write, Scope::Own),
            (Role::SalesRep, Invitations, Read, Scope::None),
            (Role::Viewer, Deals, Read, Scope::All),
            (Role::Viewer, Deals, Write, Scope::None),
            (Role::Viewer, Invitations, Read, Scope::None),
            (Role::Service, Invitations, Write, Scope::All),
            (Role::Service, Contacts, Write, Scope::None),
        ];
        for (role, r, a, s) in cases {
            assert_eq!(scope(role, r, a), s, "{role} {a} {r}");
        }
    }

    fn user(role: Role) -> AuthUser {
        let claims = Claims::new(TokenType::Access, 5, crm_tenant::TenantId::new(), "u@x.io", role, "t", Duration::from_secs(60));
        AuthUser::from_claims(claims).unwrap()
    }

    #[test]
    fn require_and_ownership() {
        let rep = user(Role::SalesRep);
        assert_eq!(rep.require(Resource::Deals, Action::Write).unwrap(), Scope::Own);
        let err = rep.require(Resource::Companies, Action::Delete).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::FORBIDDEN);
        assert_eq!(err.code(), "FORBIDDEN");
        assert_eq!(err.message(), "role sales_rep may not delete companies");

        assert!(rep.can_touch(Scope::Own, Some(5)));
        assert!(!rep.can_touch(Scope::Own, Some(6)));
        assert!(!rep.can_touch(Scope::Own, None));
        assert!(rep.can_touch(Scope::All, None));
        assert!(!rep.can_touch(Scope::None, Some(5)));
        assert!(rep.can_touch_any(Scope::Own, [Some(9), Some(5)]));
    }

    #[test]
    fn permission_strings() {
        let rep = permissions_for(Role::SalesRep);
        assert!(rep.contains(&"contacts:write:own".to_owned()));
        assert!(rep.contains(&"companies:read:all".to_owned()));
        assert!(!rep.iter().any(|p| p.starts_with("companies:delete")));
        assert_eq!(permissions_for(Role::Admin).len(), Resource::ALL.len() * Action::ALL.len(), "admin may do everything");
        assert!(!permissions_for(Role::SalesRep).iter().any(|p| p.starts_with("webhooks")));
        assert!(!permissions_for(Role::Manager).iter().any(|p| p.starts_with("system_emails")));
        assert!(permissions_for(Role::Viewer).iter().all(|p| p.contains(":read:")));
    }
}
