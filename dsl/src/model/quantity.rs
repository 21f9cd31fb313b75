//! Durations (`90s`, `1h30m`) and sizes (`512MB`, `8GiB`): parsing the text a user wrote into
//! milliseconds and bytes. Used for step settings, trigger settings and param values alike.

/// Parses a duration into milliseconds: one or more `<integer><unit>` with units ms, s, m, h, d, w.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let expected = "a duration such as `30s`, `10m`, `1h30m` or `2d` (units: ms, s, m, h, d, w)";
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(expected.to_string());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(expected.to_string());
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| "a duration that fits in 64 bits".to_string())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let millis_per_unit: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(expected.to_string()),
        };
        rest = &rest[unit_len..];
        total = number
            .checked_mul(millis_per_unit)
            .and_then(|millis| total.checked_add(millis))
            .ok_or_else(|| "a duration that fits in 64 bits".to_string())?;
    }
    Ok(total)
}

/// Parses a size into bytes: a number and a unit (B, K/KB, M/MB, G/GB, T/TB in powers of 1000;
/// KiB, MiB, GiB, TiB in powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let expected =
        "a size such as `512MB`, `8GiB` or `1.5GB` (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)";
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| expected.to_string())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| expected.to_string())?;
    let multiplier: f64 = match unit {
        "B" => 1.0,
        "K" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "T" | "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(expected.to_string()),
    };
    let bytes = (number * multiplier).round();
    if !(0.0..=u64::MAX as f64).contains(&bytes) {
        return Err("a size that fits in 64 bits".to_string());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("2d"), Ok(172_800_000));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MB"), Ok(512_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert!(parse_size("10GBB").is_err());
        assert!(parse_size("10").is_err());
        assert!(parse_size("10gb").is_err());
    }
}
