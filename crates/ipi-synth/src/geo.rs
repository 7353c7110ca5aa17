//! The countries users live in: continent, a weight (roughly the size of
//! the country's online population, flattened so no country dominates) and
//! the IANA time zones of its people.

/// A continent, for "another continent" in impossible travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Continent {
    NorthAmerica,
    SouthAmerica,
    Europe,
    Asia,
    Africa,
    Oceania,
    /// A country code the built-in table does not know (from an ip2asn file).
    Unknown,
}

/// One country of the built-in table.
#[derive(Debug, Clone, Copy)]
pub struct CountryInfo {
    /// ISO 3166-1 alpha-2.
    pub code: &'static str,
    pub continent: Continent,
    /// Relative share of users and of address blocks.
    pub weight: f64,
    /// IANA zones and their shares of the country's users.
    pub zones: &'static [(&'static str, f64)],
    /// Whether cloud and hosting networks are common there.
    pub hosting_hub: bool,
}

use Continent::*;

const fn c(
    code: &'static str,
    continent: Continent,
    weight: f64,
    zones: &'static [(&'static str, f64)],
    hosting_hub: bool,
) -> CountryInfo {
    CountryInfo { code, continent, weight, zones, hosting_hub }
}

/// The built-in countries. Zones with half- and quarter-hour offsets
/// (India, Iran, Nepal, South Australia) and both hemispheres' daylight
/// saving are in on purpose.
pub const COUNTRIES: &[CountryInfo] = &[
    c(
        "US",
        NorthAmerica,
        300.0,
        &[
            ("America/New_York", 0.47),
            ("America/Chicago", 0.29),
            ("America/Denver", 0.07),
            ("America/Los_Angeles", 0.17),
        ],
        true,
    ),
    c(
        "CA",
        NorthAmerica,
        35.0,
        &[("America/Toronto", 0.6), ("America/Vancouver", 0.25), ("America/Edmonton", 0.15)],
        false,
    ),
    c("MX", NorthAmerica, 90.0, &[("America/Mexico_City", 1.0)], false),
    c("BR", SouthAmerica, 160.0, &[("America/Sao_Paulo", 1.0)], false),
    c("AR", SouthAmerica, 40.0, &[("America/Argentina/Buenos_Aires", 1.0)], false),
    c("CO", SouthAmerica, 35.0, &[("America/Bogota", 1.0)], false),
    c("CL", SouthAmerica, 17.0, &[("America/Santiago", 1.0)], false),
    c("PE", SouthAmerica, 22.0, &[("America/Lima", 1.0)], false),
    c("GB", Europe, 65.0, &[("Europe/London", 1.0)], true),
    c("IE", Europe, 5.0, &[("Europe/Dublin", 1.0)], true),
    c("DE", Europe, 78.0, &[("Europe/Berlin", 1.0)], true),
    c("FR", Europe, 60.0, &[("Europe/Paris", 1.0)], true),
    c("NL", Europe, 16.0, &[("Europe/Amsterdam", 1.0)], true),
    c("ES", Europe, 43.0, &[("Europe/Madrid", 1.0)], false),
    c("PT", Europe, 8.0, &[("Europe/Lisbon", 1.0)], false),
    c("IT", Europe, 50.0, &[("Europe/Rome", 1.0)], false),
    c("PL", Europe, 32.0, &[("Europe/Warsaw", 1.0)], false),
    c("SE", Europe, 10.0, &[("Europe/Stockholm", 1.0)], false),
    c("RO", Europe, 15.0, &[("Europe/Bucharest", 1.0)], false),
    c("UA", Europe, 30.0, &[("Europe/Kyiv", 1.0)], false),
    c("TR", Europe, 70.0, &[("Europe/Istanbul", 1.0)], false),
    c(
        "RU",
        Europe,
        110.0,
        &[
            ("Europe/Moscow", 0.7),
            ("Asia/Yekaterinburg", 0.1),
            ("Asia/Novosibirsk", 0.1),
            ("Asia/Vladivostok", 0.1),
        ],
        false,
    ),
    c("IN", Asia, 250.0, &[("Asia/Kolkata", 1.0)], false),
    c("CN", Asia, 280.0, &[("Asia/Shanghai", 1.0)], false),
    c("JP", Asia, 110.0, &[("Asia/Tokyo", 1.0)], true),
    c("KR", Asia, 50.0, &[("Asia/Seoul", 1.0)], false),
    c("ID", Asia, 120.0, &[("Asia/Jakarta", 1.0)], false),
    c("PH", Asia, 70.0, &[("Asia/Manila", 1.0)], false),
    c("VN", Asia, 70.0, &[("Asia/Ho_Chi_Minh", 1.0)], false),
    c("TH", Asia, 50.0, &[("Asia/Bangkok", 1.0)], false),
    c("MY", Asia, 28.0, &[("Asia/Kuala_Lumpur", 1.0)], false),
    c("SG", Asia, 5.0, &[("Asia/Singapore", 1.0)], true),
    c("PK", Asia, 60.0, &[("Asia/Karachi", 1.0)], false),
    c("BD", Asia, 50.0, &[("Asia/Dhaka", 1.0)], false),
    c("NP", Asia, 10.0, &[("Asia/Kathmandu", 1.0)], false),
    c("IR", Asia, 60.0, &[("Asia/Tehran", 1.0)], false),
    c("SA", Asia, 30.0, &[("Asia/Riyadh", 1.0)], false),
    c("AE", Asia, 9.0, &[("Asia/Dubai", 1.0)], false),
    c("IL", Asia, 8.0, &[("Asia/Jerusalem", 1.0)], false),
    c("NG", Africa, 100.0, &[("Africa/Lagos", 1.0)], false),
    c("EG", Africa, 60.0, &[("Africa/Cairo", 1.0)], false),
    c("ZA", Africa, 40.0, &[("Africa/Johannesburg", 1.0)], false),
    c("KE", Africa, 20.0, &[("Africa/Nairobi", 1.0)], false),
    c("MA", Africa, 25.0, &[("Africa/Casablanca", 1.0)], false),
    c(
        "AU",
        Oceania,
        22.0,
        &[
            ("Australia/Sydney", 0.55),
            ("Australia/Brisbane", 0.2),
            ("Australia/Perth", 0.15),
            ("Australia/Adelaide", 0.1),
        ],
        true,
    ),
    c("NZ", Oceania, 4.0, &[("Pacific/Auckland", 1.0)], false),
];

/// The built-in entry for an ISO country code.
pub fn lookup(code: &str) -> Option<usize> {
    COUNTRIES.iter().position(|c| c.code.eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_zone_is_known_to_chrono_tz() {
        for country in COUNTRIES {
            assert!(!country.zones.is_empty(), "{}", country.code);
            for (zone, share) in country.zones {
                assert!(zone.parse::<chrono_tz::Tz>().is_ok(), "{zone}");
                assert!(*share > 0.0);
            }
        }
    }

    #[test]
    fn codes_are_unique() {
        for (i, a) in COUNTRIES.iter().enumerate() {
            assert_eq!(lookup(a.code), Some(i));
        }
    }
}
