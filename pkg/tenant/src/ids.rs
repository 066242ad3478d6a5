use std::fmt;
use std::str::FromStr;

use crm_database::ident::{TENANT_SCHEMA_PREFIX, is_tenant_schema, quote_ident};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

/// A tenant's id: a ULID, printed in its canonical 26-character uppercase form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Ulid);

#[derive(Debug, thiserror::Error)]
#[error("invalid tenant id: expected a 26-character ULID")]
pub struct InvalidTenantId;

impl TenantId {
    pub fn new() -> Self {
        Self(Ulid::generate())
    }

    pub fn parse(s: &str) -> Result<Self, InvalidTenantId> {
        if s.len() != 26 {
            return Err(InvalidTenantId);
        }
        Ulid::from_string(s).map(Self).map_err(|_| InvalidTenantId)
    }

    pub fn ulid(&self) -> Ulid {
        self.0
    }

    /// The tenant's schema, derived from the id.
    pub fn schema(&self) -> SchemaName {
        SchemaName(format!("{TENANT_SCHEMA_PREFIX}{}", self.0.to_string().to_ascii_lowercase()))
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.0)
    }
}

impl FromStr for TenantId {
    type Err = InvalidTenantId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A validated tenant schema name: `tenant_<ulid lowercased>`. Constructed only from a
/// [`TenantId`] or by parsing a string that matches that pattern exactly.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SchemaName(String);

#[derive(Debug, thiserror::Error)]
#[error("invalid tenant schema name")]
pub struct InvalidSchemaName;

impl SchemaName {
    pub fn parse(s: &str) -> Result<Self, InvalidSchemaName> {
        if is_tenant_schema(s) { Ok(Self(s.to_owned())) } else { Err(InvalidSchemaName) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `"tenant_..."`, for DDL such as `CREATE SCHEMA`.
    pub fn quoted(&self) -> String {
        quote_ident(&self.0)
    }

    pub fn tenant_id(&self) -> TenantId {
        let ulid = &self.0[TENANT_SCHEMA_PREFIX.len()..];
        // Validated on construction, so this cannot fail.
        TenantId(Ulid::from_string(ulid).unwrap_or_default())
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SchemaName({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_derived_lowercase_and_round_trips() {
        let id = TenantId::parse("01HZX3V5K8Q9R2S4T6W8Y0A1B2").unwrap();
        let schema = id.schema();
        assert_eq!(schema.as_str(), "tenant_01hzx3v5k8q9r2s4t6w8y0a1b2");
        assert_eq!(schema.quoted(), "\"tenant_01hzx3v5k8q9r2s4t6w8y0a1b2\"");
        assert_eq!(schema.tenant_id(), id);
        assert_eq!(SchemaName::parse(schema.as_str()).unwrap(), schema);
    }

    #[test]
    fn tenant_id_parsing_is_strict() {
        assert!(TenantId::parse("01hzx3v5k8q9r2s4t6w8y0a1b2").is_ok(), "lowercase ULIDs are accepted");
        for bad in ["", "acme", "01HZX3V5K8Q9R2S4T6W8Y0A1B", "01HZX3V5K8Q9R2S4T6W8Y0A1B2X", "'; drop table x; --------"] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn schema_names_from_input_are_validated() {
        for bad in ["public", "platform", "tenant_", "TENANT_01HZX3V5K8Q9R2S4T6W8Y0A1B2", "tenant_01hzx3v5k8q9r2s4t6w8y0a1b2; drop"] {
            assert!(SchemaName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_uses_the_canonical_form() {
        let id = TenantId::parse("01hzx3v5k8q9r2s4t6w8y0a1b2").unwrap();
        assert_eq!(serde_json_like(&id), "01HZX3V5K8Q9R2S4T6W8Y0A1B2");
    }

    fn serde_json_like(id: &TenantId) -> String {
        id.to_string()
    }
}
