//! backup.info timestamps: read as Barman reads them (`dateutil.parser.parse`, naive times
//! taken as local time) and printed in the four ways Barman prints a `datetime`.
//!
//! A timestamp keeps the UTC offset it was written with: Barman never converts, so
//! `begin_time=2025-03-04 10:11:12-05:00` is shown as `10:11:12` by every command.

use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike,
};

/// A point in time with the offset it was recorded in.
pub type Timestamp = DateTime<FixedOffset>;

/// Parses the forms of `dateutil.parser.parse` that Barman and PostgreSQL produce:
/// `YYYY-MM-DD` or `YYYYMMDD`, optionally followed (after `T` or spaces) by `HH:MM`,
/// `HH:MM:SS[.ffffff]` or `HHMMSS[.ffffff]`, then optionally a zone: `Z`, `UTC`, `GMT`,
/// `±HH`, `±HHMM` or `±HH:MM`. Digits after the sixth fractional one are dropped, as
/// dateutil does. Without a zone the time is local time, as Barman's `load_datetime_tz`
/// decides. Offsets with seconds (`+05:30:15`, which Python prints for such zones) are
/// refused, as dateutil refuses them.
pub fn parse(text: &str) -> Result<Timestamp, String> {
    let unknown = || format!("Unknown string format: {text}");
    if text.trim().is_empty() {
        return Err(format!("String does not contain a date: {text}"));
    }
    let mut s = Scanner { rest: text.trim() };

    let (year, month, day) = if s.rest.len() >= 10 && s.rest.as_bytes()[4] == b'-' {
        let y = s.number(4).ok_or_else(unknown)?;
        s.eat("-").then_some(()).ok_or_else(unknown)?;
        let m = s.number(2).ok_or_else(unknown)?;
        s.eat("-").then_some(()).ok_or_else(unknown)?;
        (y, m, s.number(2).ok_or_else(unknown)?)
    } else {
        let y = s.number(4).ok_or_else(unknown)?;
        let m = s.number(2).ok_or_else(unknown)?;
        (y, m, s.number(2).ok_or_else(unknown)?)
    };
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)
        .ok_or_else(|| format!("day is out of range for month: {text}"))?;

    let mut time = (0, 0, 0, 0);
    let had_separator = s.eat("T") || s.eat("t") || s.skip_spaces();
    if had_separator && s.rest.starts_with(|c: char| c.is_ascii_digit()) {
        let h = s.number(2).ok_or_else(unknown)?;
        let compact = !s.rest.starts_with(':');
        let (m, sec) = if compact {
            let m = s.number(2).ok_or_else(unknown)?;
            (m, s.number(2).ok_or_else(unknown)?)
        } else {
            s.eat(":");
            let m = s.number(2).ok_or_else(unknown)?;
            let sec = if s.eat(":") {
                s.number(2).ok_or_else(unknown)?
            } else {
                0
            };
            (m, sec)
        };
        let mut micros = 0;
        if s.eat(".") || s.eat(",") {
            let digits: String = s.rest.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                return Err(unknown());
            }
            s.rest = &s.rest[digits.len()..];
            let six: String = digits
                .chars()
                .chain(std::iter::repeat('0'))
                .take(6)
                .collect();
            micros = six.parse().map_err(|_| unknown())?;
        }
        time = (h, m, sec, micros);
    }
    let time = NaiveTime::from_hms_micro_opt(time.0, time.1, time.2, time.3)
        .ok_or_else(|| format!("hour, minute or second out of range: {text}"))?;
    let naive = NaiveDateTime::new(date, time);

    s.skip_spaces();
    let offset = if s.rest.is_empty() {
        None
    } else if ["Z", "z", "UTC", "GMT"].contains(&s.rest) {
        Some(0)
    } else {
        let sign = match s.rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(unknown()),
        };
        s.rest = &s.rest[1..];
        let h = s.number(2).ok_or_else(unknown)?;
        let m = if s.rest.is_empty() {
            0
        } else {
            s.eat(":");
            s.number(2).ok_or_else(unknown)?
        };
        if !s.rest.is_empty() {
            return Err(unknown());
        }
        Some(sign * (h as i32 * 3600 + m as i32 * 60))
    };

    match offset {
        Some(seconds) => FixedOffset::east_opt(seconds)
            .and_then(|tz| tz.from_local_datetime(&naive).single())
            .ok_or_else(|| format!("offset must be a timedelta strictly between -timedelta(hours=24) and timedelta(hours=24): {text}")),
        None => Ok(local(naive)),
    }
}

/// A naive time in the local zone, its offset being the one in force at that time
/// (dateutil's `tzlocal`); the first of two ambiguous times, and for a time skipped by a
/// DST change the UTC reading.
fn local(naive: NaiveDateTime) -> Timestamp {
    match chrono::Local.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.fixed_offset(),
        LocalResult::None => naive.and_utc().fixed_offset(),
    }
}

struct Scanner<'a> {
    rest: &'a str,
}

impl Scanner<'_> {
    fn number(&mut self, len: usize) -> Option<u32> {
        let digits = self.rest.get(..len)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.rest = &self.rest[len..];
        digits.parse().ok()
    }

    fn eat(&mut self, token: &str) -> bool {
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn skip_spaces(&mut self) -> bool {
        let trimmed = self.rest.trim_start();
        let skipped = trimmed.len() != self.rest.len();
        self.rest = trimmed;
        skipped
    }
}

/// Python's `str(datetime)`: `YYYY-MM-DD HH:MM:SS[.ffffff]+HH:MM[:SS]`, the form stored in
/// backup.info and shown by backup-show.
pub fn python_str(ts: &Timestamp) -> String {
    format!("{} {}{}", date(ts), clock(ts), offset(ts))
}

/// Python's `datetime.isoformat()`: as [`python_str`] with a `T`.
pub fn isoformat(ts: &Timestamp) -> String {
    format!("{}T{}{}", date(ts), clock(ts), offset(ts))
}

/// Python's `datetime.ctime()`, e.g. `Tue Mar  4 10:11:12 2025` (no offset, no fraction).
pub fn ctime(ts: &Timestamp) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {:04}",
        DAYS[ts.weekday().num_days_from_monday() as usize],
        MONTHS[ts.month0() as usize],
        ts.day(),
        ts.hour(),
        ts.minute(),
        ts.second(),
        ts.year()
    )
}

/// `strftime("%Y-%m-%d %H:%M:%S")`, the End Time column of backup-list.
pub fn list_time(ts: &Timestamp) -> String {
    format!(
        "{} {:02}:{:02}:{:02}",
        date(ts),
        ts.hour(),
        ts.minute(),
        ts.second()
    )
}

fn date(ts: &Timestamp) -> String {
    format!("{:04}-{:02}-{:02}", ts.year(), ts.month(), ts.day())
}

fn clock(ts: &Timestamp) -> String {
    // chrono keeps a leap second as nanosecond >= 1e9; Python has none, so fold it.
    let micros = (ts.nanosecond() % 1_000_000_000) / 1000;
    let hms = format!("{:02}:{:02}:{:02}", ts.hour(), ts.minute(), ts.second());
    if micros == 0 {
        hms
    } else {
        format!("{hms}.{micros:06}")
    }
}

fn offset(ts: &Timestamp) -> String {
    let total = ts.offset().local_minus_utc();
    let sign = if total < 0 { '-' } else { '+' };
    let total = total.unsigned_abs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn keeps_the_written_offset() {
        let t = at("2025-03-04 10:11:12.345678+00:00");
        assert_eq!(python_str(&t), "2025-03-04 10:11:12.345678+00:00");
        assert_eq!(isoformat(&t), "2025-03-04T10:11:12.345678+00:00");
        assert_eq!(ctime(&t), "Tue Mar  4 10:11:12 2025");
        assert_eq!(list_time(&t), "2025-03-04 10:11:12");

        let t = at("2025-12-24 23:59:01-03:30");
        assert_eq!(python_str(&t), "2025-12-24 23:59:01-03:30");
        assert_eq!(ctime(&t), "Wed Dec 24 23:59:01 2025");
    }

    #[test]
    fn accepts_dateutil_variants() {
        let cases = [
            ("2025-03-04T10:11:12Z", "2025-03-04 10:11:12+00:00"),
            ("2025-03-04 10:11:12 UTC", "2025-03-04 10:11:12+00:00"),
            ("2025-03-04 10:11:12 GMT", "2025-03-04 10:11:12+00:00"),
            ("2025-03-04 10:11:12 +0530", "2025-03-04 10:11:12+05:30"),
            ("2025-03-04 10:11:12+05", "2025-03-04 10:11:12+05:00"),
            ("2025-03-04 10:11:12-00:00", "2025-03-04 10:11:12+00:00"),
            (
                "2025-03-04 10:11:12.1234567+00:00",
                "2025-03-04 10:11:12.123456+00:00",
            ),
            (
                "2025-03-04 10:11:12.5+14:00",
                "2025-03-04 10:11:12.500000+14:00",
            ),
            ("20250304T101112+01:00", "2025-03-04 10:11:12+01:00"),
            ("2025-03-04 10:11+01:00", "2025-03-04 10:11:00+01:00"),
        ];
        for (text, expected) in cases {
            assert_eq!(python_str(&at(text)), expected, "{text}");
        }
    }

    /// `<text>\t<str()>\t<isoformat()>\t<ctime()>\t<list strftime>` of what Barman's
    /// `load_datetime_tz` makes of the text, written by generate.py.
    #[test]
    fn matches_barman_loader_and_python_formatting() {
        let golden = super::super::tests_support::fixture("formats/timestamps.tsv");
        for line in golden.lines() {
            let cols: Vec<_> = line.split('\t').collect();
            let t = at(cols[0]);
            assert_eq!(
                [python_str(&t), isoformat(&t), ctime(&t), list_time(&t)],
                cols[1..],
                "{}",
                cols[0]
            );
        }
    }

    #[test]
    fn naive_times_are_local() {
        let t = at("2025-03-04 10:11:12.5");
        let local = chrono::Local
            .from_local_datetime(&t.naive_local())
            .earliest()
            .expect("local time")
            .fixed_offset();
        assert_eq!(t, local);
        assert_eq!(t.naive_local().to_string(), "2025-03-04 10:11:12.500");
    }

    #[test]
    fn refuses_other_text() {
        for bad in [
            "",
            "   ",
            "yesterday",
            "2025-02-30 10:00:00+00:00",
            "2025-03-04 25:00:00+00:00",
            "2025-03-04 10:11:12+05:30:15",
            "2025-03-04 10:11:12 CET",
            "2025-03-04 10:11:12+99:00",
            "2025-03-04 10:11:12.+00:00",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prints_offsets_with_seconds_as_python() {
        let tz = FixedOffset::east_opt(-(5 * 3600 + 30 * 60 + 15)).expect("offset");
        let t = tz
            .with_ymd_and_hms(1901, 1, 2, 3, 4, 5)
            .single()
            .expect("time");
        assert_eq!(python_str(&t), "1901-01-02 03:04:05-05:30:15");
    }
}
