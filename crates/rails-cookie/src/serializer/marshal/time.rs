//! Ruby `Time`'s `_dump` string (time.c `time_mdump` / `time_mload`, Ruby 2.x–3.x layout).
//!
//! The string is 8 bytes, two little-endian 32-bit words holding the *UTC* broken-down time:
//!
//! ```text
//! p = 1 << 31 | utc? << 30 | (year - 1900) << 14 | (mon - 1) << 10 | mday << 5 | hour
//! s = min << 26 | sec << 20 | usec
//! ```
//!
//! A year outside 1900 ..= 1900 + 0xffff stores 0 (before) or 0xffff (after) in the year field and appends the
//! distance as a packed length byte plus that many little-endian bytes (`Time.utc(1800)` → `… 06 64`). The rest
//! of the instant travels in instance variables of the string, written in this order by a fresh Ruby process:
//! `nano_num`, `nano_den` (the nanoseconds below the microsecond, as a fraction), `submicro` (the same digits
//! as packed BCD, for Ruby 1.9.1), `offset` (non-UTC times only, whole seconds) and `zone` (`"UTC"` for UTC
//! times, the abbreviation or `nil` otherwise).

use crate::value::RubyTime;

/// Seconds in a day.
const DAY: i64 = 86_400;
/// First year the 16-bit year field can hold.
const YEAR_MIN: i64 = 1900;
/// Last year the 16-bit year field can hold.
const YEAR_MAX: i64 = 1900 + 0xffff;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`), in `i128` so no
/// input can overflow.
fn days_from_civil(year: i128, month: u32, day: u32) -> i128 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i128::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i128::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day number since 1970-01-01: `(year, month 1..=12, day 1..=31)`.
fn civil_from_days(days: i64) -> (i128, u32, u32) {
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    // `day` is in 1..=31 and `month` in 1..=12 by construction.
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

/// The dumped form of a time: the `_dump` bytes and the instance variables that go with them.
#[derive(Debug)]
pub(super) struct DumpedTime {
    /// The 8 bytes, plus the extended year when the year is outside 1900 ..= 67435.
    pub(super) bytes: Vec<u8>,
    /// Nanoseconds below the microsecond (`nano_num`, with `nano_den` 1 and `submicro`), when not zero.
    pub(super) sub_micro_nanos: Option<u32>,
}

/// Packs `time` the way `time_mdump` does.
pub(super) fn dump(time: &RubyTime) -> Result<DumpedTime, &'static str> {
    if time.nanos >= 1_000_000_000 {
        return Err("Time nanoseconds out of range");
    }
    let days = time.unix_seconds.div_euclid(DAY);
    let sod = time.unix_seconds.rem_euclid(DAY);
    let (year, month, mday) = civil_from_days(days);
    let year = i64::try_from(year).map_err(|_| "Time year out of range")?;
    let (year_field, extend) = if year < YEAR_MIN {
        (0u32, YEAR_MIN.abs_diff(year))
    } else if year > YEAR_MAX {
        (0xffff, year.abs_diff(YEAR_MAX))
    } else {
        (u32::try_from(year - YEAR_MIN).map_err(|_| "Time year out of range")?, 0)
    };
    let hour = u32::try_from(sod / 3600).map_err(|_| "Time hour out of range")?;
    let min = u32::try_from(sod % 3600 / 60).map_err(|_| "Time minute out of range")?;
    let sec = u32::try_from(sod % 60).map_err(|_| "Time second out of range")?;
    let usec = time.nanos / 1000;
    let p: u32 = 1 << 31
        | u32::from(time.is_utc) << 30
        | year_field << 14
        | (month - 1) << 10
        | mday << 5
        | hour;
    let s: u32 = min << 26 | sec << 20 | usec;
    let mut bytes = Vec::with_capacity(12);
    bytes.extend_from_slice(&p.to_le_bytes());
    bytes.extend_from_slice(&s.to_le_bytes());
    if extend > 0 {
        let le = extend.to_le_bytes();
        let size = le.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        // A packed long of 1..=8 is `size + 5`.
        bytes.push(u8::try_from(size + 5).map_err(|_| "Time year out of range")?);
        bytes.extend_from_slice(le.get(..size).unwrap_or_default());
    }
    let sub = time.nanos % 1000;
    Ok(DumpedTime { bytes, sub_micro_nanos: (sub != 0).then_some(sub) })
}

/// `submicro`: the nanoseconds below the microsecond as packed BCD, one byte when the last digit is 0.
pub(super) fn submicro(nanos: u32) -> Vec<u8> {
    let d2 = u8::try_from(nanos % 10).unwrap_or(0);
    let d1 = u8::try_from(nanos / 10 % 10).unwrap_or(0);
    let d0 = u8::try_from(nanos / 100 % 10).unwrap_or(0);
    let last = d2 << 4;
    if last == 0 {
        vec![d0 << 4 | d1]
    } else {
        vec![d0 << 4 | d1, last]
    }
}

/// What `time_mload` reads back from the 8 (or more) bytes: whole seconds since the epoch, microseconds, and
/// the UTC flag. `None` for the pre-1.9 layout (high bit clear) and for anything that is not a valid date.
pub(super) fn load(bytes: &[u8]) -> Option<(i64, u32, bool)> {
    let p = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let s = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    if p & (1 << 31) == 0 {
        return None;
    }
    let utc = (p >> 30) & 1 == 1;
    let year_field = i128::from((p >> 14) & 0xffff);
    let month = ((p >> 10) & 0xf) + 1;
    let mday = (p >> 5) & 0x1f;
    let hour = p & 0x1f;
    let min = (s >> 26) & 0x3f;
    let sec = (s >> 20) & 0x3f;
    let usec = s & 0xfffff;
    let year = match bytes.get(8..) {
        None | Some([]) => year_field + i128::from(YEAR_MIN),
        Some([len, rest @ ..]) => {
            let size = usize::from(len.checked_sub(5)?);
            if size == 0 || size > 8 || rest.len() != size {
                return None;
            }
            let mut le = [0u8; 8];
            le.get_mut(..size)?.copy_from_slice(rest);
            let extend = i128::from(u64::from_le_bytes(le));
            match year_field {
                0 => i128::from(YEAR_MIN) - extend,
                0xffff => i128::from(YEAR_MAX) + extend,
                _ => return None,
            }
        }
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&mday)
        || hour > 23
        || min > 59
        || sec > 60
        || usec > 999_999
    {
        return None;
    }
    let days = days_from_civil(year, month, mday);
    let secs = days * i128::from(DAY) + i128::from(hour * 3600 + min * 60 + sec);
    Some((i64::try_from(secs).ok()?, usec, utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-1_000_000, -719_468, -1, 0, 1, 19_724, 2_932_896, 10_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), i128::from(days), "{days}");
        }
        assert_eq!(civil_from_days(19_724), (2024, 1, 2));
    }

    #[test]
    fn dump_bytes_match_ruby() {
        // ruby -e 'p Marshal.dump(Time.at(0).utc).unpack1("H*")' → …0d 208011c0 00000000 …
        let t = dump(&RubyTime::utc(0, 0)).unwrap();
        assert_eq!(hex::encode(&t.bytes), "208011c000000000");
        // ruby -e 'p Marshal.dump(Time.utc(1800)).unpack1("H*")' → …0f 200000c0 00000000 0664 …
        let t = dump(&RubyTime::utc(-5_364_662_400, 0)).unwrap();
        assert_eq!(hex::encode(&t.bytes), "200000c0000000000664");
        assert_eq!(load(&t.bytes), Some((-5_364_662_400, 0, true)));
        // ruby -e 'p Marshal.dump(Time.utc(70000)).unpack1("H*")' → …10 20c0ffff 00000000 07050a …
        let t = dump(&RubyTime::utc(2_146_819_420_800, 0)).unwrap();
        assert_eq!(hex::encode(&t.bytes), "20c0ffff0000000007050a");
        assert_eq!(load(&t.bytes), Some((2_146_819_420_800, 0, true)));
    }

    #[test]
    fn submicro_bcd() {
        assert_eq!(submicro(789), [0x78, 0x90]);
        assert_eq!(submicro(1), [0x00, 0x10]);
        assert_eq!(submicro(500), [0x50]);
    }

    #[test]
    fn load_rejects_garbage() {
        assert_eq!(load(&[0; 4]), None);
        // mday 0 is not a date.
        assert_eq!(load(&[0, 0, 0, 0x80, 0, 0, 0, 0]), None);
        assert_eq!(load(&[0xff; 8]), None);
        assert_eq!(load(&[0x20, 0x80, 0x11, 0xc0, 0, 0, 0, 0, 4]), None);
    }
}
