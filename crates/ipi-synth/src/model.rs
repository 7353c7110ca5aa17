//! The user model: households, users, their logins, their other traffic
//! and the attacks on them, generated one block of users at a time.
//!
//! Everything a user does is drawn from streams keyed by the seed and ids
//! only (see [`crate::rng`]): the household's stream (country, zone, home
//! network, DHCP leases), the user's own (work, carrier, activity, logins),
//! a stream for the user's other traffic and one for the attacks on the
//! user. So the normal logins do not change when attack rates or the share
//! of other traffic change, and a block gives the same lines whichever
//! thread makes it.

use std::collections::HashMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Pareto, Poisson, StandardNormal};

use crate::attack::AttackKind;
use crate::clock::{DAY, Window, ZoneClock};
use crate::config::{OutputFormat, SynthConfig, parse_offset};
use crate::error::{Error, Result};
use crate::geo::Continent;
use crate::rng::{Purpose, below, cumulative, mix64, pick_cumulative, stream, unit};
use crate::space::AddressSpace;
use crate::traffic::{
    DESKTOP_AGENTS, LOGIN, Line, MOBILE_AGENTS, REQUESTS, SCRIPT_AGENTS, line_bound, push_line,
};

/// Users per household slot: households never cross a slot, and blocks
/// are whole slots, so a household is generated with all its members.
pub const SLOT: u64 = 8;
/// Mean DHCP lease of a home address.
const LEASE_MEAN_S: f64 = 4.0 * DAY as f64;
/// The lines a block (a log file) aims at: its users are chosen from the
/// expected lines per user. Bounds the memory of a block.
const LINES_PER_BLOCK: f64 = 100_000.0;
/// Normal logins a user makes per day, on average: SageMaker's
/// `50 * (pareto(1) + 1)` capped at 10,000 for 10 days is 5 per day times
/// a classical Pareto(1, 1) capped at 1,000 per day, whose mean is
/// 5 * (1 + ln 200).
pub fn mean_logins_per_day() -> f64 {
    5.0 * (1.0 + 200f64.ln())
}
/// Above this many users, the shared-address statistic follows a sample of
/// the addresses (chosen by a hash, so each is in or out for every user).
const SHARED_EXACT_USERS: u64 = 20_000;

/// A credential-stuffing campaign: a botnet working for a few hours.
#[derive(Debug, Clone)]
struct Campaign {
    start: i64,
    duration: i64,
    botnet: Vec<u32>,
}

/// A household: who lives where. Its members share the home network and
/// its DHCP address, so they share an address.
#[derive(Debug, Clone)]
struct Household {
    country: u16,
    clock: u16,
    home_row: u32,
    /// (from, address): the home address from each instant on.
    leases: Vec<(i64, u32)>,
}

impl Household {
    fn address_at(&self, t: i64) -> u32 {
        let i = self.leases.partition_point(|l| l.0 <= t);
        self.leases[i.saturating_sub(1)].1
    }
}

/// A trip: where a travelling user logs in from.
#[derive(Debug, Clone, Copy)]
struct Trip {
    addrs: [u32; 2],
}

/// A user's traits.
#[derive(Debug, Clone)]
struct Profile {
    office: Option<u32>,
    egress: [u32; 4],
    egress_count: u64,
    carrier: Option<u32>,
    /// Base weights of home, work and mobile.
    weights: [f64; 3],
    logins: u64,
    /// Acceptance probability of each local hour (peak 1).
    curve: [f64; 24],
    weekend: f64,
    desktop: u8,
    mobile: u8,
    bytes: u32,
    /// Trip of each local day of the window (index day + 1; 0 = at home).
    trip_of_day: Vec<u16>,
    trips: Vec<Trip>,
}

/// A label: one attack line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    pub t: i64,
    pub user: u64,
    pub addr: u32,
    pub kind: AttackKind,
}

/// A successful login in `events` form (parquet output).
#[derive(Debug, Clone, Copy)]
pub struct LoginRow {
    pub user: u64,
    pub line: Line,
    /// 1-based number of the row in its block.
    pub number: u64,
}

/// What a block adds to the run's statistics.
#[derive(Debug, Clone, Default)]
pub struct BlockStats {
    pub lines: u64,
    pub login_lines: u64,
    pub other_lines: u64,
    pub normal_logins: u64,
    pub travel_logins: u64,
    pub attacks: [u64; 5],
    /// Per user, in id order: login lines, distinct login addresses.
    pub per_user: Vec<(u32, u32)>,
    /// Sampled login addresses: (address, user, login lines).
    pub sample: Vec<(u32, u32, u32)>,
}

/// One block of users, generated.
#[derive(Debug)]
pub struct Block {
    pub index: u64,
    pub users: u64,
    /// The log file's bytes (gzipped when asked), in log mode.
    pub log: Option<Vec<u8>>,
    /// The login rows, in parquet mode.
    pub logins: Vec<LoginRow>,
    pub labels: Vec<Label>,
    pub stats: BlockStats,
}

/// Everything shared by the blocks of a run.
#[derive(Debug)]
pub struct World {
    pub seed: u64,
    pub users: u64,
    pub space: AddressSpace,
    pub window: Window,
    pub block_users: u64,
    pub format: OutputFormat,
    pub gzip: bool,
    clocks: Vec<ZoneClock>,
    /// Per country: clock ids and cumulative shares.
    country_clocks: Vec<(Vec<u16>, Vec<f64>)>,
    server_offset: Option<i16>,
    campaigns: Vec<Campaign>,
    /// Expected attacks of each kind per user.
    lambdas: [f64; 5],
    /// Other lines per login line.
    other_ratio: f64,
    other_requests: Vec<f64>,
    /// Per continent (by [`continent_slot`]): countries elsewhere, with
    /// cumulative weights.
    elsewhere: Vec<(Vec<u16>, Vec<f64>)>,
    /// Addresses whose hash has this many leading zero bits are sampled.
    pub sample_bits: u32,
    /// Text buffers of written blocks, for the next blocks: reusing them
    /// saves the page faults and fragmentation of fresh 20 MB buffers.
    buffers: std::sync::Mutex<Vec<Vec<u8>>>,
    home_share: Beta<f64>,
    mobile_share: Beta<f64>,
    travel_share: Beta<f64>,
    activity: Pareto<f64>,
}

fn continent_slot(c: Continent) -> usize {
    match c {
        Continent::NorthAmerica => 0,
        Continent::SouthAmerica => 1,
        Continent::Europe => 2,
        Continent::Asia => 3,
        Continent::Africa => 4,
        Continent::Oceania => 5,
        Continent::Unknown => 6,
    }
}

fn exp<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> f64 {
    -(1.0 - unit(rng)).ln() * mean
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

impl World {
    /// Prepares a run of `config` over `space`.
    pub fn new(config: &SynthConfig, space: AddressSpace) -> Result<World> {
        let window = Window::new(config.end_date, config.days);
        let server_offset = config.server_offset.as_deref().and_then(parse_offset);
        let mut zone_ids: HashMap<String, u16> = HashMap::new();
        let mut clocks = Vec::new();
        let mut country_clocks = Vec::new();
        for country in &space.countries {
            let mut ids = Vec::new();
            for (zone, _) in &country.zones {
                let id = *zone_ids.entry(zone.clone()).or_insert_with(|| {
                    let tz = zone.parse::<chrono_tz::Tz>().unwrap_or(chrono_tz::UTC);
                    clocks.push(ZoneClock::for_zone(tz, &window));
                    clocks.len() as u16 - 1
                });
                ids.push(id);
            }
            country_clocks.push((ids, cumulative(country.zones.iter().map(|z| z.1))));
        }
        let mut elsewhere = Vec::new();
        for slot in 0..7 {
            let mut countries = Vec::new();
            let mut weights = Vec::new();
            for (i, &c) in space.user_countries.iter().enumerate() {
                if continent_slot(space.countries[c as usize].continent) != slot {
                    countries.push(c);
                    let below = if i == 0 { 0.0 } else { space.user_country_weights[i - 1] };
                    weights.push(space.user_country_weights[i] - below);
                }
            }
            if countries.is_empty() {
                // Nowhere else users live: any other country with networks.
                for (c, country) in space.countries.iter().enumerate() {
                    if continent_slot(country.continent) != slot && !space.index[c].all.is_empty() {
                        countries.push(c as u16);
                        weights.push(1.0);
                    }
                }
            }
            elsewhere.push((countries, cumulative(weights)));
        }
        let mean_logins = mean_logins_per_day() * f64::from(config.days);
        let rates = config.attacks.by_kind();
        let lambdas = rates.map(|r| r / 1000.0 * mean_logins);
        let campaigns = campaigns(config, &space, &window, lambdas[1]);
        let other_ratio = config.other_traffic / (1.0 - config.other_traffic);
        let lines_per_user = mean_logins * (1.0 + other_ratio) + lambdas.iter().sum::<f64>();
        let block_users = match config.users_per_file {
            Some(users) => users.div_ceil(SLOT) * SLOT,
            None => {
                ((LINES_PER_BLOCK / lines_per_user / SLOT as f64).round() as u64).clamp(1, 1024)
                    * SLOT
            }
        };
        let sample_bits = if config.users <= SHARED_EXACT_USERS {
            0
        } else {
            (config.users as f64 / SHARED_EXACT_USERS as f64).log2().ceil() as u32
        };
        Ok(World {
            seed: config.seed,
            users: config.users,
            space,
            window,
            block_users,
            format: config.format,
            gzip: config.gzip,
            clocks,
            country_clocks,
            server_offset,
            campaigns,
            lambdas,
            other_ratio,
            other_requests: cumulative(REQUESTS.iter().skip(1).map(|r| r.weight)),
            elsewhere,
            sample_bits,
            buffers: std::sync::Mutex::new(Vec::new()),
            home_share: Beta::new(3.0, 5.0).map_err(internal)?,
            mobile_share: Beta::new(2.0, 6.0).map_err(internal)?,
            travel_share: Beta::new(1.0, 30.0).map_err(internal)?,
            activity: Pareto::new(1.0, 1.0).map_err(internal)?,
        })
    }

    /// The number of blocks (and of log files).
    pub fn blocks(&self) -> u64 {
        self.users.div_ceil(self.block_users)
    }

    /// Gives a block's text buffer back for reuse (a few are kept).
    pub fn recycle(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut buffers = self.buffers.lock().unwrap_or_else(|p| p.into_inner());
        if buffers.len() < 4 {
            buffers.push(buffer);
        }
    }

    fn buffer(&self, capacity: usize) -> Vec<u8> {
        let reused = self.buffers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut buffer = reused.unwrap_or_default();
        buffer.reserve(capacity);
        buffer
    }

    /// Whether the shared-address statistic follows `addr`.
    pub fn sampled(&self, addr: u32) -> bool {
        self.sample_bits == 0
            || mix64(u64::from(addr) ^ 0x5ea7_ed00) >> (64 - self.sample_bits) == 0
    }

    /// Households of a slot: (first member, members).
    fn households(&self, slot: u64) -> Vec<(u64, u64)> {
        const SIZES: [f64; 4] = [0.88, 0.96, 0.99, 1.0];
        let mut rng = stream(self.seed, slot, Purpose::Slot);
        let (mut user, end) = (slot * SLOT, slot * SLOT + SLOT);
        let mut out = Vec::new();
        while user < end {
            let size = (pick_cumulative(&mut rng, &SIZES) as u64 + 1).min(end - user);
            out.push((user, size));
            user += size;
        }
        out
    }

    fn household(&self, leader: u64) -> Household {
        let space = &self.space;
        let mut rng = stream(self.seed, leader, Purpose::Household);
        let country = space.user_countries[pick_cumulative(&mut rng, &space.user_country_weights)];
        let (clocks, shares) = &self.country_clocks[country as usize];
        let clock = clocks[pick_cumulative(&mut rng, shares)];
        let homes = &space.index[country as usize].homes;
        let home_row = homes[below(&mut rng, homes.len() as u64) as usize];
        let network = *space.network(home_row);
        let mut leases = vec![(i64::MIN, network.draw(&mut rng))];
        let mut t = self.window.start - (unit(&mut rng) * LEASE_MEAN_S) as i64;
        loop {
            t += exp(&mut rng, LEASE_MEAN_S) as i64 + 1;
            if t >= self.window.end {
                break;
            }
            leases.push((t, network.draw(&mut rng)));
        }
        Household { country, clock, home_row, leases }
    }

    fn profile(&self, rng: &mut ChaCha8Rng, home: &Household) -> Profile {
        let space = &self.space;
        let index = &space.index[home.country as usize];
        let office = (unit(rng) < 0.75 && !index.offices.is_empty()).then(|| {
            if unit(rng) < 0.35 && !index.big_offices.is_empty() {
                // A big employer: Zipf over the largest offices.
                let weights =
                    cumulative((0..index.big_offices.len()).map(|k| 1.0 / (k as f64 + 1.0)));
                index.big_offices[pick_cumulative(rng, &weights)]
            } else {
                // A small one near home in the table, as SageMaker's work
                // network is near the home network.
                let at = index.offices.partition_point(|&r| r < home.home_row) as f64;
                let z: f64 = StandardNormal.sample(rng);
                let i = (at + (z * 4.0).round()).clamp(0.0, (index.offices.len() - 1) as f64);
                index.offices[i as usize]
            }
        });
        let (egress, egress_count) = match office {
            Some(row) => (
                space.office_egress(self.seed, row),
                space.office_egress_count(self.seed, row) as u64,
            ),
            None => ([0; 4], 1),
        };
        let carrier = (!index.carriers.is_empty() && unit(rng) < 0.85)
            .then(|| index.carriers[pick_cumulative(rng, &index.carrier_weights)]);
        let p_home = self.home_share.sample(rng);
        let p_mobile = if carrier.is_some() { self.mobile_share.sample(rng) } else { 0.0 };
        let weights = match office {
            Some(_) => [(1.0 - p_mobile) * p_home, (1.0 - p_mobile) * (1.0 - p_home), p_mobile],
            None => [1.0 - p_mobile, 0.0, p_mobile],
        };
        let days = f64::from(self.window.days);
        let pareto: f64 = self.activity.sample(rng);
        let logins = ((5.0 * days * pareto).floor()).clamp(1.0, 1000.0 * days) as u64;
        let p_travel = self.travel_share.sample(rng);
        // Activity: a morning and an evening peak around a working-day
        // plateau, over a low night floor.
        let morning = 6.5 + 3.5 * unit(rng);
        let evening = 18.0 + 5.0 * unit(rng);
        let (a_morning, a_evening) = (0.3 + 0.7 * unit(rng), 0.5 + 0.5 * unit(rng));
        let night = 0.01 + 0.05 * unit(rng);
        let bump = |h: f64, at: f64, width: f64| {
            let d = (h - at).abs();
            let d = d.min(24.0 - d);
            (-d * d / (2.0 * width * width)).exp()
        };
        let mut curve = [0.0; 24];
        for (h, w) in curve.iter_mut().enumerate() {
            let x = h as f64 + 0.5;
            *w = night
                + if (8..18).contains(&h) { 0.25 } else { 0.0 }
                + a_morning * bump(x, morning, 1.2)
                + a_evening * bump(x, evening, 1.5);
        }
        let peak = curve.iter().copied().fold(0.0, f64::max);
        curve.iter_mut().for_each(|w| *w /= peak);
        let weekend = if office.is_some() { 0.4 + 0.4 * unit(rng) } else { 1.0 };
        let desktop = below(rng, DESKTOP_AGENTS as u64) as u8;
        let mobile = (DESKTOP_AGENTS as u64 + below(rng, MOBILE_AGENTS as u64)) as u8;
        let bytes = 430 + below(rng, 121) as u32;
        // Trips: a Markov chain over local days; a trip starts on a day at
        // home with probability p_travel / 2 and goes on with 1/2, so about
        // p_travel of the days are spent away.
        let mut trip_of_day = vec![0u16; self.window.days as usize + 2];
        let mut trips = Vec::new();
        // The day before the window starts in the chain's steady state.
        let mut away = unit(rng) < p_travel / (1.0 + p_travel);
        let mut was_away = false;
        for day in trip_of_day.iter_mut() {
            away = if away { unit(rng) < 0.5 } else { unit(rng) < p_travel / 2.0 };
            if away {
                if !was_away {
                    trips.push(self.trip(rng, home.country));
                }
                *day = trips.len() as u16;
            }
            was_away = away;
        }
        Profile {
            office,
            egress,
            egress_count,
            carrier,
            weights,
            logins,
            curve,
            weekend,
            desktop,
            mobile,
            bytes,
            trip_of_day,
            trips,
        }
    }

    fn trip(&self, rng: &mut ChaCha8Rng, home: u16) -> Trip {
        let space = &self.space;
        let mut country = home;
        if unit(rng) < 0.7 {
            for _ in 0..8 {
                country = space.user_countries[pick_cumulative(rng, &space.user_country_weights)];
                if country != home {
                    break;
                }
            }
        }
        let fixed = &space.index[country as usize].fixed;
        let network = space.network(fixed[below(rng, fixed.len() as u64) as usize]);
        Trip { addrs: [network.draw(rng), network.draw(rng)] }
    }

    /// An instant drawn from the user's activity curve: uniform over the
    /// window, kept with the curve's probability at that local hour.
    fn draw_time(&self, rng: &mut ChaCha8Rng, clock: &ZoneClock, p: &Profile) -> (i64, i32) {
        let span = self.window.span() as u64;
        for _ in 0..1000 {
            let t = self.window.start + below(rng, span) as i64;
            let offset = clock.offset(t);
            let local = t + i64::from(offset);
            let hour = (local.rem_euclid(DAY) / 3600) as usize;
            let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7);
            let keep = p.curve[hour] * if weekday >= 5 { p.weekend } else { 1.0 };
            if unit(rng) < keep {
                return (t, offset);
            }
        }
        let t = self.window.start + below(rng, span) as i64;
        (t, clock.offset(t))
    }

    fn written_offset(&self, offset_seconds: i32) -> i16 {
        self.server_offset.unwrap_or((offset_seconds / 60) as i16)
    }

    /// The normal logins of a user, in generation order.
    fn logins(&self, rng: &mut ChaCha8Rng, home: &Household, p: &Profile, out: &mut Vec<Line>) {
        let clock = &self.clocks[home.clock as usize];
        for _ in 0..p.logins {
            let (t, offset) = self.draw_time(rng, clock, p);
            let local = t + i64::from(offset);
            let day = ((local - self.window.start).div_euclid(DAY) + 1)
                .clamp(0, p.trip_of_day.len() as i64 - 1);
            let trip = p.trip_of_day[day as usize];
            let mut travel = false;
            let (addr, agent) = if trip > 0 && !(p.carrier.is_some() && unit(rng) < 0.4) {
                travel = true;
                let addrs = p.trips[trip as usize - 1].addrs;
                let agent = if unit(rng) < 0.5 { p.desktop } else { p.mobile };
                (addrs[below(rng, 2) as usize], agent)
            } else if trip > 0 {
                // Roaming: mobile data still leaves through the home carrier.
                (self.space.carriers[p.carrier.unwrap_or_default() as usize].draw(rng), p.mobile)
            } else {
                let hour = local.rem_euclid(DAY) / 3600;
                let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7);
                let [home_w, work_w, mobile_w] = p.weights;
                let (home_w, work_w) = if weekday < 5 && (8..18).contains(&hour) {
                    (home_w * 0.3, work_w * 3.0)
                } else {
                    (home_w, work_w * 0.05)
                };
                let x = unit(rng) * (home_w + work_w + mobile_w);
                if x < home_w {
                    (home.address_at(t), p.desktop)
                } else if x < home_w + work_w {
                    (p.egress[below(rng, p.egress_count) as usize], p.desktop)
                } else {
                    match p.carrier {
                        Some(c) => (self.space.carriers[c as usize].draw(rng), p.mobile),
                        None => (home.address_at(t), p.desktop),
                    }
                }
            };
            out.push(Line {
                t,
                addr,
                offset_minutes: self.written_offset(offset),
                request: LOGIN,
                status: 200,
                bytes: p.bytes + below(rng, 16) as u32,
                agent,
                referer: if unit(rng) < 0.8 { 0 } else { 1 },
                anonymous: false,
                attack: 0,
                travel,
            });
        }
    }

    /// Non-login lines around the user's logins (same session: same
    /// address and agent, within minutes).
    fn other(&self, user: u64, home: &Household, logins: usize, out: &mut Vec<Line>) {
        if self.other_ratio <= 0.0 || logins == 0 {
            return;
        }
        let clock = &self.clocks[home.clock as usize];
        let mut rng = stream(self.seed, user, Purpose::Other);
        let n = (logins as f64 * self.other_ratio + unit(&mut rng)).floor() as u64;
        for _ in 0..n {
            let anchor = out[below(&mut rng, logins as u64) as usize];
            let delta = below(&mut rng, 2400) as i64 - 600;
            let mut t = anchor.t + delta;
            if t < self.window.start || t >= self.window.end {
                t = anchor.t - delta;
            }
            let kind = 1 + pick_cumulative(&mut rng, &self.other_requests);
            let request = &REQUESTS[kind];
            let x = unit(&mut rng);
            let mut status = request.statuses[0].0;
            let mut acc = 0.0;
            for &(s, share) in request.statuses {
                acc += share;
                status = s;
                if x < acc {
                    break;
                }
            }
            let bytes = match (status, request.bytes) {
                (304 | 204, _) | (_, (0, _)) => 0,
                (_, (base, spread)) => base + below(&mut rng, u64::from(spread) + 1) as u32,
            };
            out.push(Line {
                t,
                addr: anchor.addr,
                offset_minutes: self.written_offset(clock.offset(t)),
                request: kind as u8,
                status,
                bytes,
                agent: anchor.agent,
                referer: request.referer,
                anonymous: request.anonymous,
                attack: 0,
                travel: false,
            });
        }
    }

    /// The attacks on a user. `used` is the sorted set of the user's normal
    /// addresses; `logins` the user's normal logins.
    fn attacks(
        &self,
        user: u64,
        home: &Household,
        p: &Profile,
        logins: &[Line],
        used: &[u32],
        out: &mut Vec<Line>,
    ) {
        let space = &self.space;
        let clock = &self.clocks[home.clock as usize];
        let country = &space.index[home.country as usize];
        let mut rng = stream(self.seed, user, Purpose::Attack);
        let span = self.window.span() as u64;
        for kind in AttackKind::ALL {
            let lambda = self.lambdas[kind.index()];
            if lambda <= 0.0 {
                continue;
            }
            let count = Poisson::new(lambda).map_or(0.0, |d| d.sample(&mut rng)) as u64;
            for _ in 0..count {
                let mut agent = below(&mut rng, (DESKTOP_AGENTS + MOBILE_AGENTS) as u64) as u8;
                let (t, addr) = match kind {
                    AttackKind::RandomIp => {
                        let t = self.window.start + below(&mut rng, span) as i64;
                        let row = below(&mut rng, space.networks.len() as u64) as u32;
                        (t, space.network(row).draw(&mut rng))
                    }
                    AttackKind::CredentialStuffing => {
                        let c =
                            &self.campaigns[below(&mut rng, self.campaigns.len() as u64) as usize];
                        let t = c.start + below(&mut rng, c.duration as u64) as i64;
                        if unit(&mut rng) < 0.5 {
                            agent = (DESKTOP_AGENTS + MOBILE_AGENTS) as u8
                                + below(&mut rng, SCRIPT_AGENTS as u64) as u8;
                        }
                        (t, c.botnet[below(&mut rng, c.botnet.len() as u64) as usize])
                    }
                    AttackKind::ImpossibleTravel if !logins.is_empty() => {
                        let anchor = logins[below(&mut rng, logins.len() as u64) as usize].t;
                        let delta = 60 + below(&mut rng, 1741) as i64;
                        let t = if anchor + delta < self.window.end {
                            anchor + delta
                        } else {
                            anchor - delta
                        };
                        let continent =
                            continent_slot(space.countries[home.country as usize].continent);
                        let (countries, weights) = &self.elsewhere[continent];
                        let rows = if countries.is_empty() {
                            &space.hosting
                        } else {
                            &space.index[countries[pick_cumulative(&mut rng, weights)] as usize].all
                        };
                        let row = rows[below(&mut rng, rows.len() as u64) as usize];
                        (t, space.network(row).draw(&mut rng))
                    }
                    AttackKind::ImpossibleTravel => continue,
                    AttackKind::SameCountryIsp => {
                        let (t, _) = self.draw_time(&mut rng, clock, p);
                        let mine = [
                            Some(space.org_of(home.home_row)),
                            p.office.map(|r| space.org_of(r)),
                            p.carrier.map(|c| space.carriers[c as usize].org),
                        ];
                        let mut row =
                            country.isps[below(&mut rng, country.isps.len() as u64) as usize];
                        for _ in 0..32 {
                            if !mine.contains(&Some(space.org_of(row))) {
                                break;
                            }
                            row = country.all[below(&mut rng, country.all.len() as u64) as usize];
                        }
                        (t, space.network(row).draw(&mut rng))
                    }
                    AttackKind::Cgnat => {
                        let (t, _) = self.draw_time(&mut rng, clock, p);
                        let carrier = if country.carriers.is_empty() {
                            (!space.carriers.is_empty())
                                .then(|| below(&mut rng, space.carriers.len() as u64) as u32)
                        } else if let Some(own) = p.carrier.filter(|_| unit(&mut rng) < 0.5) {
                            Some(own)
                        } else {
                            Some(
                                country.carriers
                                    [pick_cumulative(&mut rng, &country.carrier_weights)],
                            )
                        };
                        let addr = match carrier {
                            Some(c) => {
                                let carrier = &space.carriers[c as usize];
                                let mut addr = carrier.draw(&mut rng);
                                for _ in 0..32 {
                                    if used.binary_search(&addr).is_err() {
                                        break;
                                    }
                                    addr = carrier.draw(&mut rng);
                                }
                                addr
                            }
                            None => {
                                let row = country.isps
                                    [below(&mut rng, country.isps.len() as u64) as usize];
                                space.network(row).draw(&mut rng)
                            }
                        };
                        agent =
                            (DESKTOP_AGENTS as u64 + below(&mut rng, MOBILE_AGENTS as u64)) as u8;
                        (t, addr)
                    }
                };
                out.push(Line {
                    t,
                    addr,
                    offset_minutes: self.written_offset(clock.offset(t)),
                    request: LOGIN,
                    status: 200,
                    bytes: 430 + below(&mut rng, 136) as u32,
                    agent,
                    referer: if unit(&mut rng) < 0.5 { 0 } else { 1 },
                    anonymous: false,
                    attack: kind.index() as u8 + 1,
                    travel: false,
                });
            }
        }
    }

    /// Generates block `index`: its users' lines, grouped by user in id
    /// order, each user's lines in time order.
    pub fn block(&self, index: u64) -> Block {
        let first = index * self.block_users;
        let last = (first + self.block_users).min(self.users);
        let log_mode = self.format == OutputFormat::Log;
        let mut written: Vec<(u64, Line)> = Vec::new();
        let mut logins_out = Vec::new();
        let mut labels = Vec::new();
        let mut stats = BlockStats::default();
        let mut lines: Vec<Line> = Vec::new();
        let mut used: Vec<u32> = Vec::new();
        let mut login_addrs: Vec<u32> = Vec::new();
        let mut attacks: Vec<Line> = Vec::new();
        let mut number = 0u64;
        for slot in first / SLOT..last.div_ceil(SLOT) {
            for (leader, size) in self.households(slot) {
                if leader >= last {
                    break;
                }
                let home = self.household(leader);
                for user in leader..(leader + size).min(last) {
                    let mut rng = stream(self.seed, user, Purpose::User);
                    let profile = self.profile(&mut rng, &home);
                    lines.clear();
                    self.logins(&mut rng, &home, &profile, &mut lines);
                    let normal = lines.len();
                    used.clear();
                    used.extend(lines.iter().map(|l| l.addr));
                    used.sort_unstable();
                    used.dedup();
                    attacks.clear();
                    self.attacks(user, &home, &profile, &lines, &used, &mut attacks);
                    if log_mode {
                        self.other(user, &home, normal, &mut lines);
                    }
                    lines.extend_from_slice(&attacks);
                    lines.sort_by_key(|l| l.t);

                    login_addrs.clear();
                    for line in &lines {
                        stats.lines += 1;
                        if line.is_login() {
                            stats.login_lines += 1;
                            login_addrs.push(line.addr);
                            if line.attack > 0 {
                                let kind = AttackKind::ALL[line.attack as usize - 1];
                                stats.attacks[kind.index()] += 1;
                                labels.push(Label { t: line.t, user, addr: line.addr, kind });
                            } else {
                                stats.normal_logins += 1;
                                stats.travel_logins += u64::from(line.travel);
                            }
                            if !log_mode {
                                number += 1;
                                logins_out.push(LoginRow { user, line: *line, number });
                            }
                        } else {
                            stats.other_lines += 1;
                        }
                        if log_mode {
                            written.push((user, *line));
                        }
                    }
                    login_addrs.sort_unstable();
                    let mut distinct = 0u32;
                    for run in login_addrs.chunk_by(|a, b| a == b) {
                        distinct += 1;
                        if self.sampled(run[0]) {
                            stats.sample.push((run[0], user as u32, run.len() as u32));
                        }
                    }
                    stats.per_user.push((login_addrs.len() as u32, distinct));
                }
            }
        }
        let log = log_mode.then(|| {
            // One allocation of the right size: growing a buffer of tens of
            // megabytes costs copies and page faults.
            let mut text = self.buffer(written.iter().map(|(_, l)| line_bound(l)).sum());
            for (user, line) in &written {
                push_line(&mut text, *user, line);
            }
            if self.gzip {
                let packed = gzip(&text);
                self.recycle(text);
                packed
            } else {
                text
            }
        });
        Block { index, users: last - first, log, logins: logins_out, labels, stats }
    }
}

fn gzip(text: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(text.len() / 6),
        flate2::Compression::new(3),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(text);
    encoder.finish().unwrap_or_default()
}

/// The credential-stuffing campaigns: enough that each has about 250
/// successful logins, at most 4,096.
fn campaigns(
    config: &SynthConfig,
    space: &AddressSpace,
    window: &Window,
    lambda: f64,
) -> Vec<Campaign> {
    if lambda <= 0.0 {
        return Vec::new();
    }
    let expected = lambda * config.users as f64;
    let n = ((expected / 250.0).ceil() as usize).clamp(1, 4096);
    let mut rng = stream(config.seed, 0, Purpose::Campaigns);
    (0..n)
        .map(|_| {
            let duration = 3600 + below(&mut rng, 5 * 3600) as i64;
            let start = window.start + below(&mut rng, (window.span() - duration) as u64) as i64;
            let size = 200 + below(&mut rng, 301);
            let botnet = (0..size)
                .map(|_| {
                    let row = space.hosting[below(&mut rng, space.hosting.len() as u64) as usize];
                    space.network(row).draw(&mut rng)
                })
                .collect();
            Campaign { start, duration, botnet }
        })
        .collect()
}
