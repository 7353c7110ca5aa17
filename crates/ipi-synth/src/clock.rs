//! Time: the window, each zone's UTC offsets over it (daylight saving
//! included), and the Apache `%t` timestamp written without chrono on the
//! hot path.

use chrono::{NaiveDate, Offset, TimeZone};

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// The generated window `[start, end)`, in seconds since the Unix epoch,
/// UTC midnights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    pub days: u32,
}

impl Window {
    /// `days` days before `end_date` (exclusive) up to it.
    pub fn new(end_date: NaiveDate, days: u32) -> Window {
        let end = end_date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp();
        Window { start: end - i64::from(days) * DAY, end, days }
    }

    /// Seconds in the window.
    pub fn span(&self) -> i64 {
        self.end - self.start
    }

    /// The UTC day (0-based) of an instant in the window.
    pub fn day_of(&self, t: i64) -> u32 {
        ((t - self.start) / DAY) as u32
    }

    /// The Hive partition of a UTC day of the window: `date=YYYY-MM-DD`.
    pub fn partition(&self, day: u32) -> String {
        let (y, m, d) = civil_from_days((self.start / DAY) + i64::from(day));
        format!("date={y:04}-{m:02}-{d:02}")
    }
}

/// A zone's offsets over a window: (first UTC second, offset in seconds)
/// segments, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneClock {
    segments: Vec<(i64, i32)>,
}

impl ZoneClock {
    /// One offset for all time.
    #[cfg(test)]
    pub fn fixed(offset_minutes: i16) -> ZoneClock {
        ZoneClock { segments: vec![(i64::MIN, i32::from(offset_minutes) * 60)] }
    }

    /// The offsets of `zone` from two days before the window to two days
    /// after it, to the second.
    pub fn for_zone(zone: chrono_tz::Tz, window: &Window) -> ZoneClock {
        let offset_at = |t: i64| -> i32 {
            chrono::DateTime::from_timestamp(t, 0).map_or(0, |utc| {
                zone.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc()
            })
        };
        // Transitions are months apart; a 6-hour scan finds each, and a
        // bisection finds its second.
        const STEP: i64 = 6 * 3600;
        let (from, to) = (window.start - 2 * DAY, window.end + 2 * DAY);
        let mut segments = vec![(i64::MIN, offset_at(from))];
        let mut t = from;
        while t < to {
            let next = t + STEP;
            let current = segments.last().map_or(0, |s| s.1);
            let after = offset_at(next);
            if after != current {
                let (mut lo, mut hi) = (t, next);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if offset_at(mid) == current {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                segments.push((hi, after));
            }
            t = next;
        }
        ZoneClock { segments }
    }

    /// The offset in seconds east of UTC at `t`.
    #[inline]
    pub fn offset(&self, t: i64) -> i32 {
        let mut offset = self.segments[0].1;
        for &(from, o) in &self.segments[1..] {
            if t < from {
                break;
            }
            offset = o;
        }
        offset
    }
}

/// Year, month, day of a day number (days since 1970-01-01), for any day
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Appends `dd/Mon/yyyy:HH:MM:SS +hhmm` for the instant `t` (UTC seconds)
/// seen at `offset_minutes` east of UTC.
#[inline]
pub fn push_clf(out: &mut Vec<u8>, t: i64, offset_minutes: i16) {
    let local = t + i64::from(offset_minutes) * 60;
    let (y, m, d) = civil_from_days(local.div_euclid(DAY));
    let sod = local.rem_euclid(DAY) as u32;
    let two = |out: &mut Vec<u8>, v: u32| {
        out.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8])
    };
    two(out, d);
    out.push(b'/');
    out.extend_from_slice(MONTHS[(m - 1) as usize]);
    out.push(b'/');
    let y = y as u32;
    two(out, y / 100);
    two(out, y % 100);
    out.push(b':');
    two(out, sod / 3600);
    out.push(b':');
    two(out, sod / 60 % 60);
    out.push(b':');
    two(out, sod % 60);
    out.push(b' ');
    out.push(if offset_minutes < 0 { b'-' } else { b'+' });
    let abs = u32::from(offset_minutes.unsigned_abs());
    two(out, abs / 60);
    two(out, abs % 60);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_chrono() {
        for days in [-1, 0, 59, 60, 365, 10_957, 17_848, 2_932_896] {
            let date = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Days::new(0);
            let date = date.checked_add_signed(chrono::Duration::days(days)).unwrap();
            use chrono::Datelike;
            assert_eq!(civil_from_days(days), (i64::from(date.year()), date.month(), date.day()));
        }
    }

    #[test]
    fn timestamps_are_written_as_apache_does() {
        let mut out = Vec::new();
        // 2018-11-13 23:59:59 UTC.
        push_clf(&mut out, 1_542_153_599, 0);
        assert_eq!(out, b"13/Nov/2018:23:59:59 +0000");
        out.clear();
        push_clf(&mut out, 1_542_153_599, 345);
        assert_eq!(out, b"14/Nov/2018:05:44:59 +0545");
        out.clear();
        push_clf(&mut out, 1_542_153_599, -210);
        assert_eq!(out, b"13/Nov/2018:20:29:59 -0330");
    }

    #[test]
    fn daylight_saving_changes_are_found_to_the_second() {
        // New York left daylight saving at 2018-11-04 06:00:00 UTC.
        let window = Window::new(NaiveDate::from_ymd_opt(2018, 11, 14).unwrap(), 10);
        let clock = ZoneClock::for_zone(chrono_tz::America::New_York, &window);
        let change = 1_541_311_200;
        assert_eq!(clock.offset(change - 1), -4 * 3600);
        assert_eq!(clock.offset(change), -5 * 3600);
        assert_eq!(clock.offset(window.end), -5 * 3600);
        let kolkata = ZoneClock::for_zone(chrono_tz::Asia::Kolkata, &window);
        assert_eq!(kolkata, ZoneClock::fixed(330));
        assert_eq!(window.partition(0), "date=2018-11-04");
        assert_eq!(window.partition(9), "date=2018-11-13");
    }
}
