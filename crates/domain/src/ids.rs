//! Identifiers. All are UUIDs (v7 when we mint them, so they sort by time).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = crate::Invalid;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| crate::Invalid::new("must be a UUID"))
            }
        }
    };
}

id_type!(
    /// A customer account.
    TenantId
);
id_type!(
    /// A project of a tenant; repo connections belong to one.
    ProjectId
);
id_type!(
    /// A repo connection.
    ConnectionId
);
id_type!(
    /// An API key (not the secret: the record's id).
    ApiKeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uuid_and_refuses_other_text() {
        let id: ConnectionId = "0193a1b2-0000-7000-8000-000000000001".parse().unwrap();
        assert_eq!(id.to_string(), "0193a1b2-0000-7000-8000-000000000001");
        assert!("rc_x1y2z3".parse::<ConnectionId>().is_err());
    }
}
