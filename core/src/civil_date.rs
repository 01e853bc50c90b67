//! Dates in the proleptic Gregorian calendar from Unix time and back, in UTC, without a date
//! crate: Howard Hinnant's `days_from_civil` / `civil_from_days` ("chrono-Compatible Low-Level
//! Date Algorithms"), exact for every date a Unix time in seconds or milliseconds gives. One
//! implementation for the chat templates' `strftime_now` and the CLI's listings.
//!
//! ```
//! use vazhi_core::civil_date::{CivilDate, UtcDateTime};
//!
//! assert_eq!(
//!     CivilDate::from_days(0),
//!     CivilDate { year: 1970, month: 1, day: 1 }
//! );
//! assert_eq!(CivilDate { year: 2000, month: 3, day: 1 }.to_days(), 11_017);
//! assert_eq!(
//!     UtcDateTime::from_unix_ms(951_868_799_999).to_string(),
//!     "2000-02-29 23:59:59Z"
//! );
//! ```

use std::fmt;

/// Seconds in a day (UTC has no leap seconds in Unix time).
const SECS_PER_DAY: i64 = 86_400;
/// Days in a 400-year era (the Gregorian cycle).
const DAYS_PER_ERA: i64 = 146_097;
/// Days from 0000-03-01, where the algorithms' years start, to 1970-01-01.
const EPOCH_SHIFT: i64 = 719_468;

/// A day in the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    /// The year (astronomical: year 0 is 1 BC, and it may be negative).
    pub year: i64,
    /// The month, 1 to 12.
    pub month: u8,
    /// The day of the month, 1 to 31.
    pub day: u8,
}

impl CivilDate {
    /// The date `days` days after 1970-01-01 (before it, for a negative `days`). Exact for
    /// every `days` but the last 719 468 before `i64::MAX`, which saturate.
    pub fn from_days(days: i64) -> Self {
        // Years start on 1 March, so that the leap day is the last day of a year.
        let z = days.saturating_add(EPOCH_SHIFT);
        let era = z.div_euclid(DAYS_PER_ERA);
        let doe = z.rem_euclid(DAYS_PER_ERA); // day of era, 0..=146_096
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from 1 March, 0..=365
        let mp = (5 * doy + 2) / 153; // month from March, 0..=11
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Self {
            year: yoe + era * 400 + i64::from(month <= 2),
            // Both are in range by construction (1..=12, 1..=31).
            month: month as u8,
            day: day as u8,
        }
    }

    /// Days from 1970-01-01 to this date (negative before it). The inverse of
    /// [`from_days`](Self::from_days) for valid dates with years within ±10^16; an invalid one
    /// (31 April) counts on into the next month, as `mktime` does.
    pub fn to_days(self) -> i64 {
        let (month, day) = (i64::from(self.month), i64::from(self.day));
        let year = self.year - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * DAYS_PER_ERA + doe - EPOCH_SHIFT
    }

    /// Whether `year` has a 29 February.
    pub fn is_leap_year(year: i64) -> bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }
}

impl fmt::Display for CivilDate {
    /// `YYYY-MM-DD` (the year at least four digits wide).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A moment in UTC, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcDateTime {
    /// The day.
    pub date: CivilDate,
    /// The hour, 0 to 23.
    pub hour: u8,
    /// The minute, 0 to 59.
    pub minute: u8,
    /// The second, 0 to 59.
    pub second: u8,
}

impl UtcDateTime {
    /// The moment `secs` seconds after the Unix epoch (before it, for a negative `secs`).
    pub fn from_unix_secs(secs: i64) -> Self {
        let (days, rem) = (secs.div_euclid(SECS_PER_DAY), secs.rem_euclid(SECS_PER_DAY));
        // `rem` is 0..86_400, so each part fits.
        Self {
            date: CivilDate::from_days(days),
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    /// The second holding `ms` milliseconds after the Unix epoch (rounded down, also before
    /// the epoch: -1 ms is 23:59:59 on 1969-12-31).
    pub fn from_unix_ms(ms: i64) -> Self {
        Self::from_unix_secs(ms.div_euclid(1000))
    }

    /// Seconds from the Unix epoch to this moment (the inverse of
    /// [`from_unix_secs`](Self::from_unix_secs)).
    pub fn to_unix_secs(self) -> i64 {
        self.date.to_days() * SECS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

impl fmt::Display for UtcDateTime {
    /// `YYYY-MM-DD HH:MM:SSZ`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:02}:{:02}:{:02}Z",
            self.date, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i64, month: u8, day: u8) -> CivilDate {
        CivilDate { year, month, day }
    }

    #[test]
    fn known_dates() {
        for (days, expected) in [
            (0, date(1970, 1, 1)),
            (-1, date(1969, 12, 31)),
            (31, date(1970, 2, 1)),
            (10_956, date(1999, 12, 31)),
            (10_957, date(2000, 1, 1)),
            (11_016, date(2000, 2, 29)),
            (11_017, date(2000, 3, 1)),
            (19_358, date(2023, 1, 1)),
            (20_089, date(2025, 1, 1)),
            (-719_468, date(0, 3, 1)),
            (-719_162, date(1, 1, 1)),
            (2_932_896, date(9999, 12, 31)),
        ] {
            assert_eq!(CivilDate::from_days(days), expected, "day {days}");
            assert_eq!(expected.to_days(), days, "{expected}");
        }
    }

    #[test]
    fn every_day_round_trips_and_follows_the_one_before() {
        // 1600-01-01 to 2400-12-31: two whole 400-year eras, every kind of century year.
        let (first, last) = (date(1600, 1, 1).to_days(), date(2400, 12, 31).to_days());
        let mut previous = CivilDate::from_days(first - 1);
        assert_eq!(previous, date(1599, 12, 31));
        for days in first..=last {
            let d = CivilDate::from_days(days);
            assert_eq!(d.to_days(), days, "{d}");
            assert!(
                (1..=12).contains(&d.month) && (1..=31).contains(&d.day),
                "{d}"
            );
            if d.day == 1 {
                assert!(previous.month % 12 + 1 == d.month, "{previous} → {d}");
                if d.month == 1 {
                    assert_eq!(previous.year + 1, d.year);
                }
            } else {
                assert_eq!((previous.year, previous.month), (d.year, d.month));
                assert_eq!(previous.day + 1, d.day);
            }
            previous = d;
        }
        assert_eq!(previous, date(2400, 12, 31));
        // And far from the epoch, on both sides.
        for days in [
            i64::MIN / 1_000_000,
            -1_000_000_000,
            1_000_000_000,
            i64::MAX / 1_000_000,
        ] {
            assert_eq!(CivilDate::from_days(days).to_days(), days);
        }
    }

    #[test]
    fn leap_years() {
        for (year, leap) in [
            (1900, false),
            (1996, true),
            (1999, false),
            (2000, true),
            (2024, true),
            (2100, false),
            (2400, true),
            (0, true),
            (-4, true),
            (-100, false),
        ] {
            assert_eq!(CivilDate::is_leap_year(year), leap, "{year}");
            let feb_29 = CivilDate::from_days(date(year, 2, 28).to_days() + 1);
            assert_eq!(feb_29 == date(year, 2, 29), leap, "{year}: {feb_29}");
            let year_days = date(year + 1, 1, 1).to_days() - date(year, 1, 1).to_days();
            assert_eq!(year_days, if leap { 366 } else { 365 }, "{year}");
        }
    }

    #[test]
    fn utc_formats_known_instants() {
        let utc = |ms| UtcDateTime::from_unix_ms(ms).to_string();
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(1_735_689_600_000), "2025-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400_000 + 86_399_999), "2000-02-29 23:59:59Z");
        assert_eq!(utc(-1), "1969-12-31 23:59:59Z");
        assert_eq!(
            UtcDateTime::from_unix_secs(1_795_381_500).to_string(),
            "2026-11-22 21:05:00Z"
        );
        // The extremes neither overflow nor panic.
        let _ = utc(i64::MAX);
        let _ = utc(i64::MIN);
        let _ = UtcDateTime::from_unix_secs(i64::MAX).to_string();
        let _ = UtcDateTime::from_unix_secs(i64::MIN).to_string();
    }

    #[test]
    fn unix_seconds_round_trip() {
        for secs in [
            0,
            -1,
            59,
            86_399,
            86_400,
            951_868_799,
            1_735_689_600,
            -62_135_596_800,
        ] {
            assert_eq!(UtcDateTime::from_unix_secs(secs).to_unix_secs(), secs);
        }
    }
}
