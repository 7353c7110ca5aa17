//! The address space: a table of networks, each owned by an organisation
//! (an AS) with a country and a kind, plus the indexes the user model
//! draws from.
//!
//! The table is either generated from the seed ([`AddressSpace::seeded`]:
//! about 300,000 prefix-aligned networks from /24 to /12, in /12 blocks
//! that each belong to one country, so neighbouring rows share a country as
//! they mostly do in real registries) or read from an ip2asn TSV
//! ([`AddressSpace::from_ip2asn`], the iptoasn.com format).

use std::collections::HashMap;
use std::io::Read;

use rand::Rng;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::geo::{self, Continent};
use crate::rng::{Purpose, SplitMix64, below, cumulative, mix64, pick_cumulative, unit};

/// What a network is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkKind {
    /// Home broadband (DSL, cable, fibre).
    Residential,
    /// A mobile carrier; its users share a small pool of CGNAT addresses.
    Mobile,
    /// Cloud and hosting: servers, VPNs, botnets.
    Hosting,
    /// Companies, universities, public bodies; users leave through a few
    /// NAT addresses.
    Corporate,
}

impl NetworkKind {
    /// A guess from an ip2asn description (`"CLOUDFLARENET - Cloudflare,
    /// Inc."`); broadband is the default.
    pub fn guess(description: &str) -> NetworkKind {
        let d = description.to_ascii_lowercase();
        let any = |words: &[&str]| words.iter().any(|w| d.contains(w));
        if any(&["mobile", "wireless", "cellular", "cellco", "gsm", "movil", "mobil"]) {
            NetworkKind::Mobile
        } else if any(&[
            "amazon",
            "aws",
            "google",
            "microsoft",
            "azure",
            "cloud",
            "hosting",
            "host",
            "data center",
            "datacenter",
            "digitalocean",
            "ovh",
            "hetzner",
            "linode",
            "akamai",
            "server",
            "colo",
            "vps",
            "leaseweb",
            "vultr",
            "choopa",
            "oracle",
            "alibaba",
            "tencent",
        ]) {
            NetworkKind::Hosting
        } else if any(&[
            "bank",
            "universit",
            "college",
            "school",
            "government",
            "ministry",
            "hospital",
            "insurance",
            "institut",
            "academ",
            "research",
            "airline",
            "airways",
            "pharma",
            "motors",
            "holding",
            "corp",
        ]) {
            NetworkKind::Corporate
        } else {
            NetworkKind::Residential
        }
    }
}

/// One contiguous range of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// First address.
    pub start: u32,
    /// Last address (inclusive).
    pub end: u32,
    /// Index into [`AddressSpace::orgs`].
    pub org: u32,
}

impl Network {
    /// The number of addresses.
    pub fn size(&self) -> u64 {
        u64::from(self.end) - u64::from(self.start) + 1
    }

    /// A uniform address of the network.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        self.start + below(rng, self.size()) as u32
    }
}

/// An organisation: the owner of one AS number.
#[derive(Debug, Clone)]
pub struct Org {
    pub asn: u32,
    /// Index into [`AddressSpace::countries`].
    pub country: u16,
    pub kind: NetworkKind,
}

/// A country of the table.
#[derive(Debug, Clone)]
pub struct Country {
    pub code: String,
    pub continent: Continent,
    /// Relative share of users; 0 for countries no user lives in.
    pub weight: f64,
    /// IANA zones and their shares.
    pub zones: Vec<(String, f64)>,
}

/// A mobile carrier: its CGNAT pool, the few addresses its many
/// subscribers leave through.
#[derive(Debug, Clone)]
pub struct Carrier {
    pub org: u32,
    /// Pieces of the pool: (first address, length).
    pub pool: Vec<(u32, u32)>,
    pub pool_size: u32,
}

impl Carrier {
    /// A uniform address of the pool.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        let mut i = below(rng, u64::from(self.pool_size)) as u32;
        for &(start, len) in &self.pool {
            if i < len {
                return start + i;
            }
            i -= len;
        }
        self.pool[0].0
    }
}

/// Per-country lists of rows (indexes into [`AddressSpace::networks`]).
#[derive(Debug, Clone, Default)]
pub struct CountryIndex {
    /// Where homes are: residential networks (or, in a table without any,
    /// whatever is not mobile or hosting).
    pub homes: Vec<u32>,
    /// Offices: corporate networks, in address order (falls back to homes).
    pub offices: Vec<u32>,
    /// The largest offices: big employers many users share.
    pub big_offices: Vec<u32>,
    /// Mobile carriers (indexes into [`AddressSpace::carriers`]) and their
    /// cumulative weights.
    pub carriers: Vec<u32>,
    pub carrier_weights: Vec<f64>,
    /// Networks a visitor or attacker may use: anything but mobile.
    pub fixed: Vec<u32>,
    /// Residential and mobile networks: other ISPs of the country.
    pub isps: Vec<u32>,
    /// Every network of the country.
    pub all: Vec<u32>,
}

/// The table and its indexes.
#[derive(Debug, Clone)]
pub struct AddressSpace {
    /// Where the table came from: `seeded` or the file's URL.
    pub source: String,
    /// Every network, sorted by address.
    pub networks: Vec<Network>,
    pub orgs: Vec<Org>,
    pub countries: Vec<Country>,
    pub carriers: Vec<Carrier>,
    /// Per country (same order as `countries`).
    pub index: Vec<CountryIndex>,
    /// Hosting networks of every country (all networks if none).
    pub hosting: Vec<u32>,
    /// Countries users live in, and their cumulative weights.
    pub user_countries: Vec<u16>,
    pub user_country_weights: Vec<f64>,
}

/// Share of the /12 blocks that are allocated at all.
const ALLOCATED_BLOCKS: f64 = 0.35;
/// Share of ranges inside an allocated block left unrouted.
const GAP_SHARE: f64 = 0.12;
/// For prefix lengths 12 to 24: the probability that a range of that size
/// is allocated whole rather than split in two. About a third of the
/// networks come out as /24, a few as /16 and larger, as in the real
/// routing table, and every range is aligned to its size.
const WHOLE: [f64; 13] = [0.02, 0.03, 0.05, 0.08, 0.15, 0.15, 0.25, 0.3, 0.4, 0.45, 0.5, 0.5, 1.0];

/// Whether a /12 block (its index, address >> 20) touches special-use
/// space: 0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.0/24
/// and 192.168/16, 198.18/15, and everything from 224/4 up.
fn reserved_block(block: u32) -> bool {
    let (octet, sub) = (block >> 4, block & 15);
    matches!(octet, 0 | 10 | 127)
        || octet >= 224
        || (octet == 100 && (4..8).contains(&sub))
        || (octet == 169 && sub == 15)
        || (octet == 172 && sub == 1)
        || (octet == 192 && (sub == 0 || sub == 10))
        || (octet == 198 && sub == 1)
}

impl AddressSpace {
    /// The table generated from `seed`: no download, the same table for the
    /// same seed.
    pub fn seeded(seed: u64) -> AddressSpace {
        let mut rng = SplitMix64::new(seed, Purpose::Table);
        let countries: Vec<Country> = geo::COUNTRIES.iter().map(builtin_country).collect();
        let block_weights = cumulative(geo::COUNTRIES.iter().map(|c| c.weight));
        let mut orgs: Vec<Org> = Vec::new();
        // Per country, one entry per run of networks an org received: a
        // uniform pick from it favours orgs that already own many runs
        // (preferential attachment), which makes a few large ISPs.
        let mut runs: Vec<Vec<u32>> = vec![Vec::new(); countries.len()];
        let mut networks = Vec::new();
        for block in 0..4096u32 {
            if reserved_block(block) || unit(&mut rng) >= ALLOCATED_BLOCKS {
                continue;
            }
            let country = pick_cumulative(&mut rng, &block_weights);
            let hub = geo::COUNTRIES[country].hosting_hub;
            let mut org: Option<u32> = None;
            // Split the block depth first, left half first, so ranges come
            // out in address order.
            let mut stack = vec![(u64::from(block) << 20, 12u32)];
            while let Some((start, prefix)) = stack.pop() {
                if prefix < 24 && unit(&mut rng) >= WHOLE[prefix as usize - 12] {
                    let half = 1u64 << (31 - prefix);
                    stack.push((start + half, prefix + 1));
                    stack.push((start, prefix + 1));
                    continue;
                }
                if unit(&mut rng) < GAP_SHARE {
                    continue;
                }
                if org.is_none() || unit(&mut rng) < 0.2 {
                    let pool = &mut runs[country];
                    let id = if pool.is_empty() || unit(&mut rng) < 0.25 {
                        orgs.push(Org {
                            asn: 1000 + 7 * orgs.len() as u32 + below(&mut rng, 7) as u32,
                            country: country as u16,
                            kind: draw_kind(&mut rng, hub),
                        });
                        orgs.len() as u32 - 1
                    } else {
                        pool[below(&mut rng, pool.len() as u64) as usize]
                    };
                    pool.push(id);
                    org = Some(id);
                }
                let size = 1u64 << (32 - prefix);
                networks.push(Network {
                    start: start as u32,
                    end: (start + size - 1) as u32,
                    org: org.unwrap_or_default(),
                });
            }
        }
        AddressSpace::index("seeded".to_owned(), networks, orgs, countries)
    }

    /// A table read from an ip2asn TSV (`start_u32 end_u32 asn country
    /// description`, tab-separated, no header; gzip is detected). Rows with
    /// AS 0 or country `None` (not routed) are left out; an org's kind is
    /// guessed from its description ([`NetworkKind::guess`]).
    pub fn from_ip2asn(bytes: &[u8], source: &str) -> Result<AddressSpace> {
        let text_storage;
        let text: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|e| Error::Read { url: source.to_owned(), source: e })?;
            text_storage = out;
            &text_storage
        } else {
            bytes
        };
        let mut countries: Vec<Country> = geo::COUNTRIES.iter().map(builtin_country).collect();
        let mut country_ids: HashMap<String, u16> =
            countries.iter().enumerate().map(|(i, c)| (c.code.clone(), i as u16)).collect();
        let mut orgs: Vec<Org> = Vec::new();
        let mut org_ids: HashMap<u32, u32> = HashMap::new();
        let mut networks = Vec::new();
        for (number, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
                continue;
            }
            let bad = |reason: String| Error::AsnFile {
                url: source.to_owned(),
                line: number as u64 + 1,
                reason,
            };
            let line = std::str::from_utf8(line).map_err(|_| bad("not UTF-8".to_owned()))?;
            let mut fields = line.splitn(5, '\t');
            let mut next = |name: &str| {
                fields.next().map(str::trim).ok_or_else(|| bad(format!("no {name} column")))
            };
            let (start, end, asn, country) =
                (next("start")?, next("end")?, next("asn")?, next("country")?);
            let description = fields.next().unwrap_or("").trim();
            let number_of = |text: &str, name: &str| {
                text.parse::<u32>().map_err(|_| bad(format!("{name} `{text}` is not a u32")))
            };
            let (start, end, asn) =
                (number_of(start, "start")?, number_of(end, "end")?, number_of(asn, "asn")?);
            if start > end {
                return Err(bad(format!("start {start} is after end {end}")));
            }
            if asn == 0 || country.is_empty() || matches!(country, "None" | "Unknown" | "ZZ") {
                continue;
            }
            let country = match country_ids.get(country) {
                Some(&id) => id,
                None => {
                    countries.push(Country {
                        code: country.to_owned(),
                        continent: Continent::Unknown,
                        weight: 0.0,
                        zones: vec![("UTC".to_owned(), 1.0)],
                    });
                    let id = countries.len() as u16 - 1;
                    country_ids.insert(country.to_owned(), id);
                    id
                }
            };
            let org = *org_ids.entry(asn).or_insert_with(|| {
                orgs.push(Org { asn, country, kind: NetworkKind::guess(description) });
                orgs.len() as u32 - 1
            });
            networks.push(Network { start, end, org });
        }
        networks.sort_by_key(|n| (n.start, n.end));
        if networks.is_empty() {
            return Err(Error::AsnFile {
                url: source.to_owned(),
                line: 0,
                reason: "no routed rows (every row has AS 0 or country None)".to_owned(),
            });
        }
        let space = AddressSpace::index(source.to_owned(), networks, orgs, countries);
        if space.user_countries.is_empty() {
            return Err(Error::AsnFile {
                url: source.to_owned(),
                line: 0,
                reason:
                    "no network a user could live in: every routed row looks like hosting or mobile"
                        .to_owned(),
            });
        }
        Ok(space)
    }

    fn index(
        source: String,
        networks: Vec<Network>,
        orgs: Vec<Org>,
        countries: Vec<Country>,
    ) -> AddressSpace {
        let mut index = vec![CountryIndex::default(); countries.len()];
        let mut hosting = Vec::new();
        let mut carrier_rows: Vec<Vec<u32>> = vec![Vec::new(); orgs.len()];
        let mut residential = vec![Vec::new(); countries.len()];
        for (row, network) in networks.iter().enumerate() {
            let row = row as u32;
            let org = &orgs[network.org as usize];
            let i = &mut index[org.country as usize];
            i.all.push(row);
            match org.kind {
                NetworkKind::Residential => {
                    residential[org.country as usize].push(row);
                    i.isps.push(row);
                    i.fixed.push(row);
                }
                NetworkKind::Corporate => {
                    i.offices.push(row);
                    i.fixed.push(row);
                }
                NetworkKind::Hosting => {
                    hosting.push(row);
                    i.fixed.push(row);
                }
                NetworkKind::Mobile => {
                    carrier_rows[network.org as usize].push(row);
                    i.isps.push(row);
                }
            }
        }
        let mut carriers = Vec::new();
        for (org, rows) in carrier_rows.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let total: u64 = rows.iter().map(|&r| networks[r as usize].size()).sum();
            let want = (total / 64).clamp(256, 4096).min(total);
            let mut pool = Vec::new();
            let mut have = 0u64;
            for &r in &rows {
                if have >= want {
                    break;
                }
                let n = &networks[r as usize];
                let take = n.size().min(want - have);
                pool.push((n.start, take as u32));
                have += take;
            }
            let country = orgs[org].country as usize;
            index[country].carriers.push(carriers.len() as u32);
            // Bigger carriers have more subscribers, but not proportionally.
            index[country].carrier_weights.push((total as f64).sqrt());
            carriers.push(Carrier { org: org as u32, pool, pool_size: have as u32 });
        }
        for (c, i) in index.iter_mut().enumerate() {
            i.carrier_weights = cumulative(i.carrier_weights.iter().copied());
            i.homes = std::mem::take(&mut residential[c]);
            if i.homes.is_empty() {
                i.homes = i
                    .fixed
                    .iter()
                    .copied()
                    .filter(|&r| {
                        orgs[networks[r as usize].org as usize].kind != NetworkKind::Hosting
                    })
                    .collect();
            }
            if i.offices.is_empty() {
                i.offices = i.homes.clone();
            }
            let mut big = i.offices.clone();
            big.sort_by_key(|&r| (std::cmp::Reverse(networks[r as usize].size()), r));
            big.truncate(16);
            i.big_offices = big;
            if i.fixed.is_empty() {
                i.fixed = i.all.clone();
            }
            if i.isps.is_empty() {
                i.isps = i.all.clone();
            }
        }
        if hosting.is_empty() {
            hosting = (0..networks.len() as u32).collect();
        }
        let mut user_countries: Vec<u16> = (0..countries.len())
            .filter(|&c| countries[c].weight > 0.0 && !index[c].homes.is_empty())
            .map(|c| c as u16)
            .collect();
        let weights: Vec<f64> = if user_countries.is_empty() {
            // A table of countries the built-in list doesn't know: everyone
            // lives in UTC, in proportion to nothing in particular.
            user_countries = (0..countries.len())
                .filter(|&c| !index[c].homes.is_empty())
                .map(|c| c as u16)
                .collect();
            vec![1.0; user_countries.len()]
        } else {
            user_countries.iter().map(|&c| countries[c as usize].weight).collect()
        };
        AddressSpace {
            source,
            networks,
            orgs,
            countries,
            carriers,
            index,
            hosting,
            user_country_weights: cumulative(weights),
            user_countries,
        }
    }

    /// The org of a row.
    pub fn org_of(&self, row: u32) -> u32 {
        self.networks[row as usize].org
    }

    /// The network at a row.
    pub fn network(&self, row: u32) -> &Network {
        &self.networks[row as usize]
    }

    /// The NAT addresses an office leaves through: one to four addresses of
    /// its network, fixed by the network and the seed.
    pub fn office_egress(&self, seed: u64, row: u32) -> [u32; 4] {
        let n = self.network(row);
        let h = mix64(seed ^ mix64(u64::from(row) ^ 0x0ff1_ce00));
        let mut out = [0u32; 4];
        for (k, slot) in out.iter_mut().enumerate() {
            *slot = n.start + (mix64(h.wrapping_add(k as u64)) % n.size()) as u32;
        }
        out
    }

    /// How many of [`office_egress`](Self::office_egress)'s addresses are in use.
    pub fn office_egress_count(&self, seed: u64, row: u32) -> usize {
        1 + (mix64(seed ^ u64::from(row) ^ 0x00c0_0417) % 4) as usize
    }
}

fn builtin_country(c: &geo::CountryInfo) -> Country {
    Country {
        code: c.code.to_owned(),
        continent: c.continent,
        weight: c.weight,
        zones: c.zones.iter().map(|(z, w)| ((*z).to_owned(), *w)).collect(),
    }
}

fn draw_kind<R: Rng + ?Sized>(rng: &mut R, hosting_hub: bool) -> NetworkKind {
    let hosting = if hosting_hub { 0.22 } else { 0.06 };
    let x = unit(rng);
    if x < 0.45 {
        NetworkKind::Residential
    } else if x < 0.55 {
        NetworkKind::Mobile
    } else if x < 0.55 + hosting {
        NetworkKind::Hosting
    } else {
        NetworkKind::Corporate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeded_table_is_sorted_aligned_and_public() {
        let space = AddressSpace::seeded(1);
        assert!((150_000..600_000).contains(&space.networks.len()), "{}", space.networks.len());
        for pair in space.networks.windows(2) {
            assert!(pair[0].end < pair[1].start);
        }
        for n in &space.networks {
            let size = n.size();
            assert!(size.is_power_of_two() && (256..=1 << 20).contains(&size));
            assert_eq!(u64::from(n.start) % size, 0, "unaligned");
            assert!(!reserved_block(n.start >> 20));
        }
        for kind in [
            NetworkKind::Residential,
            NetworkKind::Mobile,
            NetworkKind::Hosting,
            NetworkKind::Corporate,
        ] {
            assert!(space.orgs.iter().any(|o| o.kind == kind), "{kind:?}");
        }
        assert!(!space.carriers.is_empty());
        assert_eq!(space.user_countries.len(), geo::COUNTRIES.len());
        let again = AddressSpace::seeded(1);
        assert_eq!(space.networks, again.networks);
        assert_ne!(space.networks, AddressSpace::seeded(2).networks);
    }

    #[test]
    fn ip2asn_rows_are_read_and_unrouted_ones_skipped() {
        let tsv = b"16777216\t16777471\t13335\tUS\tCLOUDFLARENET - Cloudflare, Inc.\n\
                    16777472\t16778239\t0\tNone\tNot routed\n\
                    16778240\t16779263\t56203\tAU\tGTELECOM-AUSTRALIA Gtelecom\n\
                    16779264\t16781311\t38803\tXX\tSome Mobile Carrier\n";
        let space = AddressSpace::from_ip2asn(tsv, "mem").unwrap();
        assert_eq!(space.networks.len(), 3);
        assert_eq!(space.orgs[0].kind, NetworkKind::Hosting);
        assert_eq!(space.orgs[2].kind, NetworkKind::Mobile);
        assert_eq!(space.countries[space.orgs[2].country as usize].continent, Continent::Unknown);
        assert_eq!(space.user_countries, [geo::lookup("AU").unwrap() as u16]);
        let only_hosting = b"1\t256\t7\tUS\tSome Cloud Hosting\n";
        let err = AddressSpace::from_ip2asn(only_hosting, "mem").unwrap_err().to_string();
        assert!(err.contains("no network a user could live in"), "{err}");
        let err = AddressSpace::from_ip2asn(b"1\t2\t3\n", "mem").unwrap_err().to_string();
        assert!(err.contains("mem:1") && err.contains("country"), "{err}");
    }
}
