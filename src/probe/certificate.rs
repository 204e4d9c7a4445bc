//! The few facts a check reads from the certificate a server presented: when it expires, who
//! issued it and whom it names. A small DER reader for exactly those fields of an X.509
//! certificate, so no certificate-parsing crate is needed; anything unexpected gives `None`.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// What a server's certificate says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateInfo {
    /// The end of its validity.
    #[serde(serialize_with = "crate::wall::serde_rfc3339::serialize")]
    pub not_after: SystemTime,
    /// Its issuer, as `CN=..., O=..., C=...`.
    pub issuer: String,
    /// Its subject, the same way.
    pub subject: String,
}

/// One DER element: its tag, its contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, &rest[count..])
    };
    (rest.len() >= length).then(|| (tag, &rest[..length], &rest[length..]))
}

/// Reads the certificate `der`.
pub(crate) fn parse(der: &[u8]) -> Option<CertificateInfo> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, certificate, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(certificate)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] version, when present.
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    let (_serial, _, rest) = element(rest)?;
    let (_signature, _, rest) = element(rest)?;
    let (SEQUENCE, issuer, rest) = element(rest)? else {
        return None;
    };
    let (SEQUENCE, validity, rest) = element(rest)? else {
        return None;
    };
    let (SEQUENCE, subject, _) = element(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = element(validity)?;
    let (time_tag, not_after, _) = element(after_not_before)?;
    Some(CertificateInfo {
        not_after: time(time_tag, not_after)?,
        issuer: name(issuer),
        subject: name(subject),
    })
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn time(tag: u8, value: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    let (year, rest) = match (tag, text.len()) {
        (0x17, 12) => {
            let short: i64 = text[..2].parse().ok()?;
            (
                if short < 50 {
                    2000 + short
                } else {
                    1900 + short
                },
                &text[2..],
            )
        }
        (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |at: usize| -> Option<i64> { rest.get(at..at + 2)?.parse().ok() };
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let seconds = u64::try_from(seconds).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A distinguished name as `CN=..., O=...`: the attributes people read, in order.
fn name(mut sequence: &[u8]) -> String {
    let mut parts = Vec::new();
    while let Some((_, set, rest)) = element(sequence) {
        sequence = rest;
        let Some((_, attribute, _)) = element(set) else {
            continue;
        };
        let Some((0x06, oid, value)) = element(attribute) else {
            continue;
        };
        let label = match oid {
            [0x55, 0x04, 0x03] => "CN",
            [0x55, 0x04, 0x0a] => "O",
            [0x55, 0x04, 0x0b] => "OU",
            [0x55, 0x04, 0x06] => "C",
            _ => continue,
        };
        if let Some((0x0c | 0x13 | 0x16 | 0x14, text, _)) = element(value) {
            parts.push(format!("{label}={}", String::from_utf8_lossy(text)));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_count_days_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 27), 20_784);
    }

    #[test]
    fn times_read_both_encodings() {
        let utc = time(0x17, b"261127103000Z").unwrap();
        let generalized = time(0x18, b"20261127103000Z").unwrap();
        assert_eq!(utc, generalized);
        assert_eq!(crate::wall::rfc3339(utc), "2026-11-27T10:30:00.000Z");
        assert_eq!(time(0x17, b"261327103000Z"), None, "month 13");
        assert_eq!(time(0x17, b"2611271030Z"), None);
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        for bytes in [
            &b""[..],
            &[0x30],
            &[0x30, 0x82, 0xff],
            &[0x30, 0x03, 0x30, 0x01, 0x00],
        ] {
            assert_eq!(parse(bytes), None);
        }
    }
}
