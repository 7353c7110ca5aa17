//! The attack kinds, as named in the `labels` dataset's `attack_kind`.

use serde::Serialize;

/// A kind of account takeover the generator injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackKind {
    /// A known user from a uniformly random network of the table (the
    /// SageMaker notebook's test traffic).
    RandomIp,
    /// One of a botnet's hosting-network addresses, during the botnet's
    /// campaign of a few hours against many accounts.
    CredentialStuffing,
    /// Another continent, 1 to 30 minutes after one of the user's logins.
    ImpossibleTravel,
    /// Another ISP of the user's own country, at the user's usual hours.
    SameCountryIsp,
    /// A mobile carrier's CGNAT address the user never used.
    Cgnat,
}

impl AttackKind {
    /// Every kind, in the order of [`crate::AttackRates::by_kind`].
    pub const ALL: [AttackKind; 5] = [
        AttackKind::RandomIp,
        AttackKind::CredentialStuffing,
        AttackKind::ImpossibleTravel,
        AttackKind::SameCountryIsp,
        AttackKind::Cgnat,
    ];

    /// The `attack_kind` value.
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::RandomIp => "random_ip",
            AttackKind::CredentialStuffing => "credential_stuffing",
            AttackKind::ImpossibleTravel => "impossible_travel",
            AttackKind::SameCountryIsp => "same_country_isp",
            AttackKind::Cgnat => "cgnat",
        }
    }

    /// The kind's position in [`ALL`](Self::ALL).
    pub fn index(self) -> usize {
        self as usize
    }
}
