//! The run lock: an object in the store, with an expiry, so that two runs of
//! the same pipeline and date never overlap.
//!
//! # Protocol
//!
//! A lock is a folder, `<store>/runs/_locks/<pipeline>/<key>/`, of numbered
//! leases `lease-<n>.json` (`n` zero-padded, so names sort by number). Only
//! the newest lease counts. To take the lock a run reads the newest lease
//! and, if it is free (released, expired, or held by a process of this
//! machine that has died), creates lease `n + 1` with a create-if-absent
//! PUT ([`ipi_storage::put_if_absent`]: `If-None-Match: *` on S3, a hard
//! link on local disk, exclusive in memory). Of two runs racing for the same
//! number exactly one creates it; the other then finds a live lease and
//! stops. Lease numbers only grow: a holder never deletes its own lease
//! (releasing rewrites it as released), and the holder of lease `n + 1`
//! deletes the older ones.
//!
//! While it runs, the holder renews its lease every quarter of the TTL. A
//! run that dies without releasing blocks others until its lease expires,
//! except on the same machine, where a lease whose process is gone (same
//! boot, pid not alive or reused) is free at once: a crashed run can be
//! resumed with `ipi-pipeline retry` straight away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ipi_storage::{Location, ObjectStoreExt as _};
use serde::{Deserialize, Serialize};

/// One lease: who holds the lock, and until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The run holding it.
    pub run_id: String,
    /// `ipi-pipeline run` or `retry`.
    pub command: String,
    pub pipeline: String,
    /// What is locked: the pipeline's date params (`2018-11-12`).
    pub key: String,
    pub host: String,
    /// Linux's boot id, to tell a pid of this boot from an older one.
    #[serde(default)]
    pub boot_id: Option<String>,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (Linux), to tell
    /// it from a later process with the same pid.
    #[serde(default)]
    pub pid_start: Option<u64>,
    pub acquired_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub released: bool,
}

impl Lease {
    /// A lease for this process.
    pub fn new(run_id: &str, command: &str, pipeline: &str, key: &str, ttl: Duration) -> Lease {
        let now = Utc::now();
        let me = Process::current();
        Lease {
            run_id: run_id.to_owned(),
            command: command.to_owned(),
            pipeline: pipeline.to_owned(),
            key: key.to_owned(),
            host: me.host,
            boot_id: me.boot_id,
            pid: std::process::id(),
            pid_start: me.start,
            acquired_at: now,
            renewed_at: now,
            expires_at: now + ttl_delta(ttl),
            released: false,
        }
    }

    /// Why this lease no longer holds the lock, or `None` while it does.
    fn free_because(&self, now: DateTime<Utc>) -> Option<&'static str> {
        if self.released {
            return Some("released");
        }
        if self.expires_at <= now {
            return Some("expired");
        }
        let me = Process::current();
        let same_boot =
            self.host == me.host && self.boot_id.is_some() && self.boot_id == me.boot_id;
        if same_boot && !process_alive(self.pid, self.pid_start) {
            return Some("its process is gone");
        }
        None
    }
}

fn ttl_delta(ttl: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::MAX)
}

/// The lock is held by another run.
#[derive(Debug, Clone)]
pub struct Held {
    /// The live lease.
    pub lease: Lease,
    /// Where it is.
    pub url: String,
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.lease;
        write!(
            f,
            "another run of `{}` for {} is in progress: run {} (`ipi-pipeline {}`) on {} \
             (pid {}), started {}, lease renewed {}, expires {} unless renewed; not starting. \
             Wait for it to finish; if it died on another machine, its lock frees itself when it \
             expires (lease {})",
            l.pipeline,
            l.key,
            l.run_id,
            l.command,
            l.host,
            l.pid,
            l.acquired_at.format("%Y-%m-%dT%H:%M:%SZ"),
            l.renewed_at.format("%Y-%m-%dT%H:%M:%SZ"),
            l.expires_at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.url
        )
    }
}

impl std::error::Error for Held {}

/// A held lock. Renews itself until [`Guard::release`] (or drop, which
/// stops renewing and leaves the lease to expire).
#[derive(Debug)]
pub struct Guard {
    location: Location,
    lease: Lease,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
    /// The lease this one replaced without its holder releasing it (its
    /// process died, or it expired), and why it was free.
    taken_over: Option<(Lease, &'static str)>,
}

impl Guard {
    /// The unreleased lease this guard's lease replaced, and why it was
    /// free: the run that held it died without finishing.
    pub fn taken_over(&self) -> Option<&(Lease, &'static str)> {
        self.taken_over.as_ref()
    }

    /// Where the lease is.
    pub fn url(&self) -> String {
        self.location.to_string()
    }

    /// True once another run took the lock over (this run's renewals
    /// stalled past the TTL): the run must stop writing.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stop renewing and mark the lease released, so the next run can start
    /// at once.
    pub async fn release(self) {
        self.renewer.abort();
        if self.is_lost() {
            return;
        }
        let mut lease = self.lease.clone();
        lease.released = true;
        lease.renewed_at = Utc::now();
        if let Err(error) = write(&self.location, &lease).await {
            tracing::warn!(url = %self.location, %error, "Failed to release the run lock; it frees itself when it expires.");
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

const PREFIX: &str = "lease-";
const SUFFIX: &str = ".json";

fn lease_name(n: u64) -> String {
    format!("{PREFIX}{n:020}{SUFFIX}")
}

fn lease_number(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?.parse().ok()
}

async fn write(location: &Location, lease: &Lease) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(lease)?;
    ipi_storage::put_atomic(location, Bytes::from(bytes)).await?;
    Ok(())
}

/// The newest lease in `dir`: its number, location and content (`None`
/// when it vanished while being read).
async fn newest(dir: &Location) -> anyhow::Result<Option<(u64, Location, Option<Lease>)>> {
    let metas = ipi_storage::list_all(dir).await?;
    let Some((n, path)) = metas
        .into_iter()
        .filter_map(|m| Some((lease_number(m.location.filename()?)?, m.location)))
        .max_by_key(|(n, _)| *n)
    else {
        return Ok(None);
    };
    let location = dir.with_path(path);
    let lease = match ipi_storage::get_bytes(&location).await {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!("the run lock {location} is not a lease ({e}); remove it by hand")
        })?),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    Ok(Some((n, location, lease)))
}

/// Take the lock in `dir` for `lease`, or say who holds it. `ttl` is how
/// long the lease lasts without renewal.
pub async fn acquire(
    dir: &Location,
    mut lease: Lease,
    ttl: Duration,
) -> anyhow::Result<Result<Guard, Held>> {
    for _ in 0..8 {
        let now = Utc::now();
        let mut taken_over = None;
        let next = match newest(dir).await? {
            None => 0,
            // Deleted under us by a newer holder's clean-up: look again.
            Some((_, _, None)) => continue,
            Some((n, location, Some(holder))) => match holder.free_because(now) {
                None => return Ok(Err(Held { lease: holder, url: location.to_string() })),
                Some(why) => {
                    if !holder.released {
                        tracing::warn!(run_id = %holder.run_id, host = %holder.host, pid = holder.pid, why, "Taking over a run lock that was not released.");
                        taken_over = Some((holder, why));
                    }
                    n + 1
                }
            },
        };
        let location = dir.join(&lease_name(next));
        lease.acquired_at = now;
        lease.renewed_at = now;
        lease.expires_at = now + ttl_delta(ttl);
        let bytes = Bytes::from(serde_json::to_vec_pretty(&lease)?);
        if !ipi_storage::put_if_absent(&location, bytes).await? {
            // Another run took this number first; see who.
            continue;
        }
        // Older leases are history now.
        for old in ipi_storage::list_all(dir).await.unwrap_or_default() {
            if old.location.filename().and_then(lease_number).is_some_and(|n| n < next) {
                let _ = dir.store().delete(&old.location).await;
            }
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew(
            dir.clone(),
            location.clone(),
            lease.clone(),
            next,
            ttl,
            lost.clone(),
        ));
        tracing::debug!(url = %location, "Took the run lock.");
        return Ok(Ok(Guard { location, lease, lost, renewer, taken_over }));
    }
    anyhow::bail!("could not take the run lock in {dir}: too much contention")
}

/// Renew the lease every quarter of the TTL, until aborted or lost.
async fn renew(
    dir: Location,
    location: Location,
    mut lease: Lease,
    number: u64,
    ttl: Duration,
    lost: Arc<AtomicBool>,
) {
    let every = (ttl / 4).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        match newest(&dir).await {
            Ok(Some((n, _, _))) if n != number => {
                lost.store(true, Ordering::SeqCst);
                tracing::error!(url = %location, "Lost the run lock: another run took it over. Stopping.");
                return;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(url = %dir, %error, "Failed to check the run lock."),
        }
        let now = Utc::now();
        lease.renewed_at = now;
        lease.expires_at = now + ttl_delta(ttl);
        if let Err(error) = write(&location, &lease).await {
            tracing::warn!(url = %location, %error, "Failed to renew the run lock.");
        }
    }
}

/// Facts about this process, to recognise its leases later.
struct Process {
    host: String,
    boot_id: Option<String>,
    start: Option<u64>,
}

impl Process {
    fn current() -> Process {
        let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
        Process {
            host: read("/proc/sys/kernel/hostname")
                .or_else(|| std::env::var("HOSTNAME").ok())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_owned()),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            start: process_start(std::process::id()),
        }
    }
}

/// Field 22 of `/proc/PID/stat` (start time), and whether it is a zombie.
fn stat(pid: u32) -> Option<(u64, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let rest = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, start time field 22.
    let zombie = fields.first().is_some_and(|s| *s == "Z" || *s == "X");
    Some((fields.get(19)?.parse().ok()?, zombie))
}

fn process_start(pid: u32) -> Option<u64> {
    stat(pid).map(|(start, _)| start)
}

/// Whether the process that took a lease still runs (Linux). Elsewhere,
/// or when unsure, it is taken to be alive and the lease must expire.
fn process_alive(pid: u32, start: Option<u64>) -> bool {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return true;
    }
    match stat(pid) {
        None => false,
        Some((_, true)) => false,
        Some((now_start, false)) => start.is_none_or(|s| s == now_start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> Location {
        Location::parse(&format!("memory://lock-tests/{name}/{}", uuid::Uuid::now_v7())).unwrap()
    }

    const TTL: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_second_run_is_refused_until_the_first_releases() {
        let dir = dir("second");
        let first = acquire(&dir, Lease::new("r1", "run", "daily", "2018-11-12", TTL), TTL)
            .await
            .unwrap()
            .unwrap();
        let held = acquire(&dir, Lease::new("r2", "run", "daily", "2018-11-12", TTL), TTL)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(held.lease.run_id, "r1");
        assert!(held.to_string().contains("run r1"), "{held}");
        first.release().await;
        let second = acquire(&dir, Lease::new("r2", "run", "daily", "2018-11-12", TTL), TTL)
            .await
            .unwrap()
            .unwrap();
        assert!(second.url().ends_with(&lease_name(1)), "{}", second.url());
        // The released lease was cleaned up.
        let names: Vec<String> = ipi_storage::list_all(&dir)
            .await
            .unwrap()
            .iter()
            .filter_map(|m| m.location.filename().map(str::to_owned))
            .collect();
        assert_eq!(names, [lease_name(1)]);
    }

    #[tokio::test]
    async fn of_runs_racing_exactly_one_wins() {
        let dir = dir("race");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let dir = dir.clone();
                tokio::spawn(async move {
                    let lease = Lease::new(&format!("r{i}"), "run", "daily", "d", TTL);
                    acquire(&dir, lease, TTL).await.unwrap()
                })
            })
            .collect();
        let mut won = Vec::new();
        for t in tasks {
            if let Ok(guard) = t.await.unwrap() {
                won.push(guard);
            }
        }
        assert_eq!(won.len(), 1);
    }

    #[tokio::test]
    async fn expired_and_dead_leases_are_taken_over() {
        let dir = dir("stale");
        // Expired: written by hand, as a run on another machine would have.
        let mut old = Lease::new("gone", "run", "daily", "d", TTL);
        old.host = "elsewhere".into();
        old.expires_at = Utc::now() - chrono::TimeDelta::seconds(1);
        write(&dir.join(&lease_name(7)), &old).await.unwrap();
        let guard =
            acquire(&dir, Lease::new("r", "run", "daily", "d", TTL), TTL).await.unwrap().unwrap();
        assert!(guard.url().ends_with(&lease_name(8)));
        drop(guard);

        // Not expired, but its process (on this machine) is gone.
        let dir = self::dir("dead");
        let mut dead = Lease::new("dead", "run", "daily", "d", TTL);
        dead.pid = u32::MAX - 1;
        write(&dir.join(&lease_name(0)), &dead).await.unwrap();
        let took = acquire(&dir, Lease::new("r", "retry", "daily", "d", TTL), TTL).await.unwrap();
        if Process::current().boot_id.is_some() {
            assert!(took.is_ok(), "a dead process's lease is free on Linux");
        }

        // A live lease of another machine is not.
        let dir = self::dir("live");
        let mut live = Lease::new("live", "run", "daily", "d", TTL);
        live.host = "elsewhere".into();
        write(&dir.join(&lease_name(0)), &live).await.unwrap();
        let took = acquire(&dir, Lease::new("r", "run", "daily", "d", TTL), TTL).await.unwrap();
        assert_eq!(took.unwrap_err().lease.run_id, "live");
    }

    #[test]
    fn this_process_is_alive() {
        let me = Process::current();
        assert!(process_alive(std::process::id(), me.start));
        if me.start.is_some() {
            assert!(!process_alive(std::process::id(), me.start.map(|s| s + 1)));
        }
    }
}
