//! The terminal's clock and randomness, kept at the edge: the kernels receive them as inputs.

use kernels::types::EmvDate;
use std::time::{SystemTime, UNIX_EPOCH};

/// Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
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

/// Today (UTC) as an EMV date and the time as HHMMSS BCD.
pub fn now() -> (EmvDate, [u8; 3]) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let date = EmvDate((y.rem_euclid(100) as u32) * 10_000 + m * 100 + d);
    let bcd = |v: i64| ((v / 10) << 4 | (v % 10)) as u8;
    (date, [bcd(s / 3600), bcd(s / 60 % 60), bcd(s % 60)])
}

/// Today in the terminal's time zone as an EMV date (9A) and the time as HHMMSS BCD (9F21):
/// EMV's transaction date and time are the terminal's local ones.
pub fn now_in(tz: &jiff::tz::TimeZone) -> (EmvDate, [u8; 3]) {
    let z = zoned(tz, unix_now() as i64);
    let n = |f: &str| z.strftime(f).to_string().parse::<u32>().unwrap_or(0);
    let bcd = |v: u32| ((v / 10) << 4 | (v % 10)) as u8;
    (EmvDate(n("%y") * 10_000 + n("%m") * 100 + n("%d")), [bcd(n("%H")), bcd(n("%M")), bcd(n("%S"))])
}

/// Unix seconds, for the journal and reports.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of unix seconds, for receipts and screens.
pub fn format_utc(secs: u64) -> String {
    let secs = secs as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Unix seconds in the terminal's time zone.
fn zoned(tz: &jiff::tz::TimeZone, unix_secs: i64) -> jiff::ZonedDateTime {
    jiff::Timestamp::from_second(unix_secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH).to_zoned_datetime(tz.clone())
}

/// `YYYY-MM-DD HH:MM:SS` in the terminal's time zone, for screens (history, detail).
pub fn format_local(tz: &jiff::tz::TimeZone, unix_secs: u64) -> String {
    zoned(tz, unix_secs as i64).strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// `YYYY-MM-DD HH:MM:SS CST`: local time with the zone's abbreviation (or its offset when the
/// zone has none), for receipts.
pub fn format_local_zone(tz: &jiff::tz::TimeZone, unix_secs: u64) -> String {
    zoned(tz, unix_secs as i64).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
}

/// `HH:MM:SS CST` now, for the status bar.
pub fn local_clock(tz: &jiff::tz::TimeZone) -> String {
    zoned(tz, unix_now() as i64).strftime("%H:%M:%S %Z").to_string()
}

/// DE 12 (local time, `hhmmss`) and DE 13 (local date, `MMDD`) of a message sent at `unix_secs`,
/// in the terminal's time zone (ISO 8583:1987: the card acceptor's local time and date).
pub fn local_de12_de13(tz: &jiff::tz::TimeZone, unix_secs: i64) -> (String, String) {
    let z = zoned(tz, unix_secs);
    (z.strftime("%H%M%S").to_string(), z.strftime("%m%d").to_string())
}

/// A fresh Unpredictable Number 9F37 from the operating system's CSPRNG.
pub fn unpredictable_number() -> std::io::Result<[u8; 4]> {
    random()
}

/// `N` bytes from the operating system's CSPRNG (getrandom(2)).
pub fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    use rand_core::RngCore;
    let mut b = [0u8; N];
    rand_core::OsRng.try_fill_bytes(&mut b).map_err(std::io::Error::other)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_516), (2026, 3, 4));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(format_utc(1_772_582_400 + 3_723), "2026-03-04 01:02:03");
    }

    #[test]
    fn local_time_in_shanghai() {
        let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        // 2026-12-31 17:30:00 UTC is 2027-01-01 01:30:00 in Shanghai (UTC+8): a new day and year.
        let t = 1_798_738_200;
        assert_eq!(format_utc(t as u64), "2026-12-31 17:30:00");
        assert_eq!(local_de12_de13(&tz, t), ("013000".to_string(), "0101".to_string()));
        assert_eq!(format_local(&tz, t as u64), "2027-01-01 01:30:00");
        assert_eq!(format_local_zone(&tz, t as u64), "2027-01-01 01:30:00 CST");
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(local_de12_de13(&utc, t), ("173000".to_string(), "1231".to_string()));
    }

    #[test]
    fn unpredictable_numbers_differ() {
        assert_ne!(unpredictable_number().unwrap(), unpredictable_number().unwrap());
    }
}
