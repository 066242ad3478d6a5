//! PostgreSQL WAL positions (`pg_lsn`), for the read replica: a write's commit position, a
//! replica's replay position, and the `Crm-Lsn` consistency token that carries the first to
//! a later read.

use std::fmt;
use std::str::FromStr;

/// A WAL position (`pg_lsn`): a byte offset into the cluster's write-ahead log, written by
/// PostgreSQL as two hexadecimal halves, `16/B374D848`. Ordered: a replica whose replay
/// position is at least a commit's position shows that commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

/// Text that is not `<hex>/<hex>` (each half at most 8 digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a WAL position (expected <hex>/<hex>, e.g. 16/B374D848)")]
pub struct InvalidLsn;

impl FromStr for Lsn {
    type Err = InvalidLsn;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (high, low) = s.trim().split_once('/').ok_or(InvalidLsn)?;
        let half = |h: &str| {
            if h.is_empty() || h.len() > 8 {
                return Err(InvalidLsn);
            }
            u32::from_str_radix(h, 16).map_err(|_| InvalidLsn)
        };
        Ok(Self((u64::from(half(high)?) << 32) | u64::from(half(low)?)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_postgres_text() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, (0x16 << 32) | 0xB374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("0/8000060".parse::<Lsn>().unwrap() < "1/0".parse::<Lsn>().unwrap());
        for bad in ["", "12", "x/1", "1/", "123456789/0", "1/2/3"] {
            assert_eq!(bad.parse::<Lsn>(), Err(InvalidLsn), "{bad}");
        }
    }
}
