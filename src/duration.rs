//! Durations as operators write them: `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"1d"`, or several
//! parts such as `"1m30s"`.

use std::time::Duration;

const UNITS: &str = "ms, s, m, h, d";

/// Parses a duration, or says what is wrong and what is allowed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| {
        format!(
            "bad duration \"{text}\": {why} (write a number and a unit: {UNITS}, e.g. \"30s\" or \"1m30s\")"
        )
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad("a number must come first"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| bad("the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Some(Duration::from_millis(number)),
            "s" => Some(Duration::from_secs(number)),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "h" => number.checked_mul(3_600).map(Duration::from_secs),
            "d" => number.checked_mul(86_400).map(Duration::from_secs),
            "" => return Err(bad("the unit is missing")),
            other => return Err(bad(&format!("unknown unit \"{other}\""))),
        };
        total = part
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| bad("it is too long"))?;
    }
    Ok(total)
}

/// Writes a duration the way [`parse_duration`] reads it, in the largest exact unit.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis % 1000 != 0 {
        return format!("{millis}ms");
    }
    let secs = duration.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs != 0 && secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_parses() {
        for (text, expected) in [
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3_600)),
            ("1d", Duration::from_secs(86_400)),
            ("1m30s", Duration::from_secs(90)),
            ("1s500ms", Duration::from_millis(1_500)),
            (" 0s ", Duration::ZERO),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn every_bad_input_says_why() {
        for (text, why) in [
            ("", "it is empty"),
            ("30", "the unit is missing"),
            ("s", "a number must come first"),
            ("30x", "unknown unit \"x\""),
            ("30 s", "unknown unit \" s\""),
            ("1.5s", "unknown unit \".\""),
            ("-5s", "a number must come first"),
            ("99999999999999999999s", "the number is too large"),
            ("999999999999999999d", "it is too long"),
        ] {
            let error = parse_duration(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
            assert!(error.contains("e.g. \"30s\""), "{error}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["250ms", "30s", "2m", "1h", "1d", "90s", "0s"] {
            let duration = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    }
}
