//! The PHP value semantics the Bitrix server applies to request parameters:
//! `empty()`, `is_numeric()`, `(int)` and `strval()` over decoded JSON or
//! query-string values.

use serde_json::Value;

/// Characters PHP treats as whitespace around numeric strings.
const WHITESPACE: &[char] = &[' ', '\t', '\n', '\r', '\x0b', '\x0c'];

/// PHP `empty()`: missing, `null`, `false`, `0`, `0.0`, `""`, `"0"` and empty
/// arrays are empty.
pub fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => !b,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => s.is_empty() || s == "0",
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
    }
}

/// PHP 8 `is_numeric()`: numbers, and strings holding a decimal number with
/// optional sign, fraction and exponent, with whitespace allowed around it.
pub fn is_numeric(value: &Value) -> bool {
    match value {
        Value::Number(_) => true,
        Value::String(s) => {
            let trimmed = s.trim_start_matches(WHITESPACE);
            let (len, _) = scan_number(trimmed);
            len > 0 && trimmed[len..].trim_matches(WHITESPACE).is_empty()
        }
        _ => false,
    }
}

/// PHP `(int)` cast. Strings use their leading numeric part (`"12abc"` → 12,
/// `"1e3"` → 1000, `"abc"` → 0) and integer strings saturate; floats are
/// truncated, infinite ones become 0 and out-of-range ones wrap modulo 2^64
/// (PHP 7+ on 64-bit). JSON integers beyond the 64-bit range are floats in PHP.
pub fn to_int(value: Option<&Value>) -> i64 {
    match value {
        None | Some(Value::Null) => 0,
        Some(Value::Bool(b)) => i64::from(*b),
        Some(Value::Number(n)) => n
            .as_i64()
            .unwrap_or_else(|| n.as_f64().map_or(0, float_to_int)),
        Some(Value::String(s)) => string_to_int(s),
        Some(Value::Array(a)) => i64::from(!a.is_empty()),
        Some(Value::Object(o)) => i64::from(!o.is_empty()),
    }
}

/// PHP `strval()` for scalars; `None` for arrays and objects.
pub fn to_string(value: Option<&Value>) -> Option<String> {
    match value {
        None | Some(Value::Null) => Some(String::new()),
        Some(Value::Bool(true)) => Some("1".to_owned()),
        Some(Value::Bool(false)) => Some(String::new()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(_) | Value::Object(_)) => None,
    }
}

fn string_to_int(s: &str) -> i64 {
    let trimmed = s.trim_start_matches(WHITESPACE);
    let (len, is_float) = scan_number(trimmed);
    if len == 0 {
        return 0;
    }
    let number = &trimmed[..len];
    if is_float {
        number.parse::<f64>().map_or(0, float_to_int)
    } else {
        number.parse::<i64>().unwrap_or(if number.starts_with('-') {
            i64::MIN
        } else {
            i64::MAX
        })
    }
}

/// PHP's float-to-int conversion.
fn float_to_int(f: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    if !f.is_finite() {
        return 0;
    }
    if (-TWO_POW_63..TWO_POW_63).contains(&f) {
        return f as i64;
    }
    let mut wrapped = f.trunc() % TWO_POW_64;
    if wrapped < 0.0 {
        wrapped += TWO_POW_64;
    }
    if wrapped >= TWO_POW_63 {
        wrapped -= TWO_POW_64;
    }
    wrapped as i64
}

/// Length of the decimal number at the start of `s` and whether it has a
/// fraction or exponent; `(0, false)` when `s` does not start with one.
fn scan_number(s: &str) -> (usize, bool) {
    let b = s.as_bytes();
    let digits_from = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_end = digits_from(i);
    let int_digits = int_end - i;
    i = int_end;
    let mut is_float = false;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        let frac_end = digits_from(i + 1);
        frac_digits = frac_end - (i + 1);
        if int_digits > 0 || frac_digits > 0 {
            i = frac_end;
            is_float = true;
        }
    }
    if int_digits == 0 && frac_digits == 0 {
        return (0, false);
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut k = i + 1;
        if k < b.len() && (b[k] == b'+' || b[k] == b'-') {
            k += 1;
        }
        let exp_end = digits_from(k);
        if exp_end > k {
            i = exp_end;
            is_float = true;
        }
    }
    (i, is_float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_follows_php() {
        for v in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!("0"),
            json!([]),
        ] {
            assert!(is_empty(Some(&v)), "{v} should be empty");
        }
        for v in [
            json!(" "),
            json!("0.0"),
            json!("a"),
            json!(1),
            json!(true),
            json!(["x"]),
        ] {
            assert!(!is_empty(Some(&v)), "{v} should not be empty");
        }
        assert!(is_empty(None));
    }

    #[test]
    fn numeric_follows_php8() {
        for s in [
            "288", " 288", "288 ", "-5", "+5", "1.5", ".5", "5.", "1e3", "1E-2", "0",
        ] {
            assert!(is_numeric(&json!(s)), "{s:?} should be numeric");
        }
        for s in ["", " ", "12abc", "0x1A", ".", "e3", "1e", "abc", "1 2"] {
            assert!(!is_numeric(&json!(s)), "{s:?} should not be numeric");
        }
        assert!(is_numeric(&json!(288)));
        assert!(!is_numeric(&json!(true)));
        assert!(!is_numeric(&json!([1])));
    }

    #[test]
    fn int_cast_follows_php() {
        let cases = [
            (json!("288"), 288),
            (json!(" 12"), 12),
            (json!("12abc"), 12),
            (json!("1e3"), 1000),
            (json!("12.9"), 12),
            (json!("-5"), -5),
            (json!("abc"), 0),
            (json!(12.9), 12),
            (json!(true), 1),
            (json!("99999999999999999999"), i64::MAX),
            (json!("1e400"), 0),
            (json!(18446744073709551615u64), 0),
            (json!(1.8446744073709552e19 + 4096.0), 4096),
        ];
        for (v, want) in cases {
            assert_eq!(to_int(Some(&v)), want, "(int){v}");
        }
        assert_eq!(to_int(None), 0);
    }
}
